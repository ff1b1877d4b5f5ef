"""integration kind: Chatlayer Offloading integrations (API URL and token, bot, handback)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 20:40:00
"""

# ruff: noqa: F401  (connector.storage.db: every migration imports it, see test_migrations)
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('integration') as batch:
        batch.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30),
                                   server_default='smartly', nullable=False))
        batch.add_column(sa.Column('api_url', sqlmodel.sql.sqltypes.AutoString(length=2000),
                                   nullable=True))
        batch.add_column(sa.Column('api_token', sqlmodel.sql.sqltypes.AutoString(length=2000),
                                   nullable=True))
        batch.add_column(sa.Column('bot_id', sqlmodel.sql.sqltypes.AutoString(length=200),
                                   nullable=True))
        batch.add_column(sa.Column('handback_action', sa.JSON(),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('integration') as batch:
        for name in ('handback_action', 'bot_id', 'api_token', 'api_url', 'kind'):
            batch.drop_column(name)
