"""rosters: guards' shifts, and check-in / check-out with a handover note

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 13:20:00

guard.on_duty stays and keeps one meaning: the guard is in service (a member the station may
dispatch at all); being on duty now is decided by these tables (closedloop/duty.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'duty_shift',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('community_id', sa.String(length=32), nullable=False),
        sa.Column('guard_id', sa.String(length=40), nullable=False),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['community_id'], ['community.id'], name=op.f('fk_duty_shift_community_id_community'), ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(['guard_id'], ['guard.id'], name=op.f('fk_duty_shift_guard_id_guard'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_shift')),
    )
    with op.batch_alter_table('duty_shift', schema=None) as batch_op:
        batch_op.create_index('ix_duty_shift_community_end', ['community_id', 'end_at'], unique=False)
        batch_op.create_index('ix_duty_shift_guard_start', ['guard_id', 'start_at'], unique=False)

    op.create_table(
        'duty_check',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('community_id', sa.String(length=32), nullable=False),
        sa.Column('guard_id', sa.String(length=40), nullable=False),
        sa.Column('grid_id', sa.String(length=40), nullable=True),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['community_id'], ['community.id'], name=op.f('fk_duty_check_community_id_community'), ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(['guard_id'], ['guard.id'], name=op.f('fk_duty_check_guard_id_guard'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_check')),
    )
    with op.batch_alter_table('duty_check', schema=None) as batch_op:
        batch_op.create_index('ix_duty_check_community_at', ['community_id', 'at'], unique=False)
        batch_op.create_index('ix_duty_check_guard_at', ['guard_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('duty_check', schema=None) as batch_op:
        batch_op.drop_index('ix_duty_check_guard_at')
        batch_op.drop_index('ix_duty_check_community_at')
    op.drop_table('duty_check')
    with op.batch_alter_table('duty_shift', schema=None) as batch_op:
        batch_op.drop_index('ix_duty_shift_guard_start')
        batch_op.drop_index('ix_duty_shift_community_end')
    op.drop_table('duty_shift')
