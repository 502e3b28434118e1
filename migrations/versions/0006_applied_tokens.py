"""applied tokens: exactly-once SQL side effects of the worker

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'applied_token',
        sa.Column('community_id', sa.String(length=32), nullable=False),
        sa.Column('token', sa.String(length=160), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('community_id', 'token', name=op.f('pk_applied_token')),
    )
    with op.batch_alter_table('applied_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applied_token_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('applied_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applied_token_at'))
    op.drop_table('applied_token')
