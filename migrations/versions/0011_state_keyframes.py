"""state keyframes: the sand-table at any moment (issue #19)

Revision ID: 0011
Revises: 0011a
Create Date: 2026-12-06 17:00:00

One compressed snapshot per community per keyframe boundary (memory/keyframes.py); built lazily by
memory/state.py, deleted from a late event's time on by the archiver.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0011a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state_keyframe",
        sa.Column("community_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("built", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", "at", name=op.f("pk_state_keyframe")),
    )


def downgrade() -> None:
    op.drop_table("state_keyframe")
