"""incidents and residents' calls: a resident's call to the police is an alert (its id on the call)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('resident_report', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_resident_report_alert_id'), ['alert_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('resident_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resident_report_alert_id'))
        batch_op.drop_column('alert_id')
