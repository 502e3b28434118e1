"""event archive: the cell index covers a polygon's first pass (issue #19, the search)

Revision ID: 0011a
Revises: 0010
Create Date: 2026-12-06 17:00:00

A polygon's search reads, for the cells under the polygon and the window, each row's key (ts,
entry) and position, and filters by kind and grid: with these columns in the index it never
reads the table for the many points of the cells that fall outside the polygon (P10). On
PostgreSQL an index on the partitioned table is created on every partition.
"""

from __future__ import annotations

from alembic import op

revision = "0011a"
down_revision = "0010"
branch_labels = None
depends_on = None

NAME = "ix_event_archive_cell"


def upgrade() -> None:
    op.drop_index(NAME, table_name="event_archive")
    op.create_index(
        NAME, "event_archive", ["community_id", "cell", "ts", "entry", "lat", "lon", "type", "grid_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="event_archive")
    op.create_index(NAME, "event_archive", ["community_id", "cell", "ts"], unique=False)
