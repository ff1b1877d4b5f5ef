"""workspace (issue 14): ticket labels, canned responses, idempotent requests,
satisfaction surveys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = connector.storage.db.UTCDateTime


def upgrade() -> None:
    op.create_table('ticket_label',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('label', _S(length=50), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('ticket_id', 'label')
    )
    with op.batch_alter_table('ticket_label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_label_label'), ['label'], unique=False)
    op.create_table('canned_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', _S(length=10), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('shortcut', _S(length=50), nullable=False),
    sa.Column('text', _S(length=4000), nullable=False),
    sa.Column('created_at', _T(), nullable=False),
    sa.Column('updated_at', _T(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_canned_response_owner_id'), ['owner_id'],
                              unique=False)
    op.create_table('idempotent_request',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', _S(length=200), nullable=False),
    sa.Column('target', _S(length=300), nullable=False),
    sa.Column('fingerprint', _S(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', _T(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'key')
    )
    with op.batch_alter_table('idempotent_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotent_request_created_at'), ['created_at'],
                              unique=False)
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('survey_sent_at', _T(), nullable=True))
        batch_op.add_column(sa.Column('csat_score', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('csat_comment', _S(length=1000), nullable=True))
        batch_op.add_column(sa.Column('csat_at', _T(), nullable=True))
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('survey_question', _S(length=500), nullable=True))
        batch_op.add_column(sa.Column('survey_labels', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.drop_column('survey_labels')
        batch_op.drop_column('survey_question')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        for column in ('csat_at', 'csat_comment', 'csat_score', 'survey_sent_at'):
            batch_op.drop_column(column)
    op.drop_table('idempotent_request')
    op.drop_table('canned_response')
    op.drop_table('ticket_label')
