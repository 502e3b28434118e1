"""notifications: targets, the outbox of deliveries, in-app notices (issue #18)

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-06 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notify_target',
        sa.Column('id', sa.String(length=16), nullable=False),
        sa.Column('community_id', sa.String(length=32), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('secret', sa.String(length=128), nullable=False),
        sa.Column('recipients', sa.JSON(), nullable=False),
        sa.Column('types', sa.JSON(), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('min_severity', sa.String(length=8), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_target')),
    )
    with op.batch_alter_table('notify_target', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_target_community_id'), ['community_id'], unique=False)

    op.create_table(
        'notify_delivery',
        sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('target_id', sa.String(length=16), nullable=False),
        sa.Column('alert_id', sa.String(length=32), nullable=False),
        sa.Column('community_id', sa.String(length=32), nullable=False),
        sa.Column('event', sa.String(length=24), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('leased_by', sa.String(length=40), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ['target_id'], ['notify_target.id'],
            name=op.f('fk_notify_delivery_target_id_notify_target'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_notify_delivery')),
        sa.UniqueConstraint('id', name=op.f('uq_notify_delivery_id')),
    )
    with op.batch_alter_table('notify_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_delivery_alert_id'), ['alert_id'], unique=False)
        batch_op.create_index('ix_notify_delivery_due', ['state', 'next_at'], unique=False)
        batch_op.create_index('ix_notify_delivery_queue', ['target_id', 'alert_id', 'state', 'seq'], unique=False)

    op.create_table(
        'notify_notice',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('community_id', sa.String(length=32), nullable=False),
        sa.Column('audience', sa.String(length=48), nullable=False),
        sa.Column('alert_id', sa.String(length=32), nullable=False),
        sa.Column('event', sa.String(length=24), nullable=False),
        sa.Column('alert_type', sa.String(length=24), nullable=False),
        sa.Column('severity', sa.String(length=8), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_notice')),
    )
    with op.batch_alter_table('notify_notice', schema=None) as batch_op:
        batch_op.create_index('ix_notify_notice_community_id', ['community_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_table('notify_notice')
    op.drop_table('notify_delivery')
    op.drop_table('notify_target')
