"""routing: availability, capacity and skills of users; assignment times, re-queues and
reasons of tickets; what integrations tell end users

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 17:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = connector.storage.db.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', _S(length=10), server_default='offline',
                                      nullable=False))
        batch_op.add_column(sa.Column('status_at', _T(), nullable=True))
        batch_op.add_column(sa.Column('console_gone_at', _T(), nullable=True))
        batch_op.add_column(sa.Column('max_concurrent', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('skills', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('last_assigned_at', _T(), nullable=True))
        batch_op.add_column(sa.Column('display_name', _S(length=100), nullable=True))
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assigned_at', _T(), nullable=True))
        batch_op.add_column(sa.Column('queued_at', _T(), nullable=True))
        batch_op.add_column(sa.Column('requeues', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('avoid_user_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('ticket_transition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', _S(length=30), nullable=True))
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue_message', _S(length=1000), nullable=True))
        batch_op.add_column(sa.Column('assigned_message', _S(length=1000), nullable=True))
        batch_op.add_column(sa.Column('offline_message', _S(length=1000), nullable=True))
        batch_op.add_column(sa.Column('business_hours', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('first_response_target_seconds', sa.Integer(),
                                      server_default='120', nullable=False))
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index('ix_message_ticket_kind', ['ticket_id', 'kind'], unique=False)
    # Tickets open before routing existed: in the queue since their handover, assigned
    # since their claim.
    op.execute("UPDATE ticket SET queued_at = opened_at WHERE state = 'queued'")
    op.execute("UPDATE ticket SET assigned_at = claimed_at WHERE state = 'assigned'")


def downgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_ticket_kind')
    with op.batch_alter_table('integration', schema=None) as batch_op:
        for column in ('first_response_target_seconds', 'business_hours', 'offline_message',
                       'assigned_message', 'queue_message'):
            batch_op.drop_column(column)
    with op.batch_alter_table('ticket_transition', schema=None) as batch_op:
        batch_op.drop_column('reason')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        for column in ('avoid_user_id', 'requeues', 'queued_at', 'assigned_at'):
            batch_op.drop_column(column)
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        for column in ('display_name', 'last_assigned_at', 'skills', 'max_concurrent',
                       'console_gone_at', 'status_at', 'status'):
            batch_op.drop_column(column)
