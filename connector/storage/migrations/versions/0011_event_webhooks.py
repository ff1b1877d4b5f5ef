"""event webhooks (issue 15): subscriptions of the customer's own URLs, with their signing
secrets, and the outbox of the events sent to them

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = connector.storage.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'webhook_subscription',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', _S(length=2000), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('description', _S(length=500), nullable=True),
        sa.Column('secret', _S(length=100), nullable=False),
        sa.Column('previous_secret', _S(length=100), nullable=True),
        sa.Column('previous_secret_expires_at', _T(), nullable=True),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.Column('disabled_reason', _S(length=200), nullable=True),
        sa.Column('created_at', _T(), nullable=False),
        sa.Column('updated_at', _T(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('event_type', _S(length=50), nullable=False),
        sa.Column('webhook_id', _S(length=64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('state', _S(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', _T(), nullable=False),
        sa.Column('lease_until', _T(), nullable=True),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', _S(length=1000), nullable=True),
        sa.Column('created_at', _T(), nullable=False),
        sa.Column('retry_since', _T(), nullable=False),
        sa.Column('updated_at', _T(), nullable=False),
        sa.Column('delivered_at', _T(), nullable=True),
        sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscription.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subscription_id', 'webhook_id'))
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_due', ['state', 'next_attempt_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_delivery_subscription_id'),
                              ['subscription_id'], unique=False)


def downgrade() -> None:
    op.drop_table('webhook_delivery')
    op.drop_table('webhook_subscription')
