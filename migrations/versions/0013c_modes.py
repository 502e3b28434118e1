"""maintenance mode of devices and away mode of people (issue #20, device upkeep: the modes)

Revision ID: 0013c
Revises: 0013a
Create Date: 2026-12-06 19:40:00

One table of periods, ``mode_period`` (registry/modes.py): a device's maintenance or a person's
away time, with who set it, why, until when and when it was ended early.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0013c"
down_revision = "0013a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mode_period",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=48), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_mode_period_community_id_community"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_period")),
    )
    op.create_index("ix_mode_period_live", "mode_period", ["community_id", "kind", "ended_at"], unique=False)
    op.create_index(op.f("ix_mode_period_subject"), "mode_period", ["subject"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_mode_period_subject"), table_name="mode_period")
    op.drop_index("ix_mode_period_live", table_name="mode_period")
    op.drop_table("mode_period")
