"""signing secret (issue 15): each integration signs its replies to the channel
(Standard Webhooks); existing integrations get a secret of their own here

The secret is an HMAC key, so it is stored as given (as the verify token is),
never hashed: see `connector.outbound.signing` and docs/operations.md.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

import base64
import secrets

import sqlalchemy as sa
import sqlmodel
from alembic import op

import connector.storage.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signing_secret',
                                      sqlmodel.sql.sqltypes.AutoString(length=100),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('previous_signing_secret',
                                      sqlmodel.sql.sqltypes.AutoString(length=100),
                                      nullable=True))
        batch_op.add_column(sa.Column('previous_signing_secret_expires_at',
                                      connector.storage.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('signing_secret_rotated_at',
                                      connector.storage.db.UTCDateTime(), nullable=True))
    # A secret per existing integration, as `outbound.signing.new_secret` makes them
    # (written out: a migration does not change when the code does).
    integration = sa.table('integration', sa.column('id', sa.String),
                           sa.column('signing_secret', sa.String))
    bind = op.get_bind()
    for (integration_id,) in bind.execute(sa.select(integration.c.id)).all():
        secret = 'whsec_' + base64.b64encode(secrets.token_bytes(24)).decode()
        bind.execute(sa.update(integration).where(integration.c.id == integration_id)
                     .values(signing_secret=secret))


def downgrade() -> None:
    with op.batch_alter_table('integration', schema=None) as batch_op:
        for name in ('signing_secret_rotated_at', 'previous_signing_secret_expires_at',
                     'previous_signing_secret', 'signing_secret'):
            batch_op.drop_column(name)
