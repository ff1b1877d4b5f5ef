"""test sends: an admin's test messages to a channel, and what it answered

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('test_send',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('recipient_id', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('at', connector.storage.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('test_send', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_send_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_test_send_integration_id'), ['integration_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('test_send')
