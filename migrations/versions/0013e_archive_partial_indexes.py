"""event archive: the building, household, plate and person indexes hold only the rows that have one (issue 24)

Revision ID: 0013e
Revises: 0013c
Create Date: 2026-12-07 18:10:00

Every archived event paid an insert into seven indexes: the archive's copy cost more CPU per
event than the analytics (docs/performance.md, "Third round"). A search by a building, a household,
a plate or a person compares the column to a value, which implies it is not null, so SQLite and
PostgreSQL use these partial indexes as before; the rows without the column (a guard's position,
a shared device's heartbeat, every event but a vehicle's for the plate) are no longer inserted into
them. On PostgreSQL an index on the partitioned table is created on every partition.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013e"
down_revision = "0013c"
branch_labels = None
depends_on = None

PARTIAL = {
    "ix_event_archive_building": "building_id",
    "ix_event_archive_household": "household_id",
    "ix_event_archive_plate": "plate",
    "ix_event_archive_person": "person",
}


def upgrade() -> None:
    for name, column in PARTIAL.items():
        op.drop_index(name, table_name="event_archive")
        condition = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            name,
            "event_archive",
            ["community_id", column, "ts"],
            unique=False,
            sqlite_where=condition,
            postgresql_where=condition,
        )


def downgrade() -> None:
    for name, column in PARTIAL.items():
        op.drop_index(name, table_name="event_archive")
        op.create_index(name, "event_archive", ["community_id", column, "ts"], unique=False)
