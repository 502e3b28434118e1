"""the wanted list's entries may expire (issue #20: the wanted list is managed)

Revision ID: 0013a
Revises: 0012
Create Date: 2026-12-06 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0013a"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watchlist") as batch:
        batch.add_column(sa.Column("expires_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watchlist") as batch:
        batch.drop_column("expires_on")
