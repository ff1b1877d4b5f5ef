"""audit trail (issue 16): who did what, when, from where and what changed; and
integrations that can be disabled (their webhooks refused, nothing stored)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = connector.storage.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'audit_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', _T(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor', _S(length=100), nullable=True),
        sa.Column('role', _S(length=20), nullable=True),
        sa.Column('address', _S(length=100), nullable=True),
        sa.Column('action', _S(length=60), nullable=False),
        sa.Column('target_type', _S(length=30), nullable=True),
        sa.Column('target_id', _S(length=200), nullable=True),
        sa.Column('changes', sa.JSON(), nullable=True),
        sa.Column('request_id', _S(length=100), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_event_action', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_event_actor', ['actor_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_event_target', ['target_type', 'target_id', 'id'],
                              unique=False)
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.drop_column('disabled')
    op.drop_table('audit_event')
