"""event archive: every accepted event with its place (issue #19)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 16:30:00

On PostgreSQL the table is partitioned by range of ``ts`` (epoch ms); the partitions, a week each,
are created by the archiver as events need them (memory/archive.py) and dropped by ``purge``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_event_archive_time": ["community_id", "ts"],
    "ix_event_archive_cell": ["community_id", "cell", "ts"],
    "ix_event_archive_building": ["community_id", "building_id", "ts"],
    "ix_event_archive_household": ["community_id", "household_id", "ts"],
    "ix_event_archive_device": ["community_id", "device_id", "ts"],
    "ix_event_archive_plate": ["community_id", "plate", "ts"],
    "ix_event_archive_person": ["community_id", "person", "ts"],
}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "event_archive",
        sa.Column("community_id", sa.String(length=40), nullable=False),
        sa.Column("entry", sa.String(length=24), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("device_id", sa.String(length=48), nullable=False),
        sa.Column("building_id", sa.String(length=40), nullable=True),
        sa.Column("household_id", sa.String(length=48), nullable=True),
        sa.Column("grid_id", sa.String(length=40), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("cell", sa.BigInteger(), nullable=True),
        sa.Column("guard_id", sa.String(length=40), nullable=True),
        sa.Column("plate", sa.String(length=16), nullable=True),
        sa.Column("person", sa.String(length=80), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", "entry", "ts", name=op.f("pk_event_archive")),
        **({"postgresql_partition_by": "RANGE (ts)"} if postgresql else {}),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "event_archive", columns, unique=False)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="event_archive")
    op.drop_table("event_archive")
