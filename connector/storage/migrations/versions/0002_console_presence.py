"""console presence: which instance has a console of which user open

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_presence',
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('seen_at', connector.storage.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('instance_id', 'user_id')
    )
    with op.batch_alter_table('console_presence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_presence_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_presence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_presence_user_id'))
    op.drop_table('console_presence')
