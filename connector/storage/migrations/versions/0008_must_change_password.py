"""must change password (issue 16): an account whose password must be replaced at its
next sign-in (the generated first admin's, or one an admin marks so)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.storage.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

#: The column types' module, which every migration imports; this one needs none of them.
_TYPES = connector.storage.db


def upgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
