"""survey marker: the conversation's pending satisfaction survey (issue 14)

The ingest writer already reads and locks the conversation row of every event;
these two columns say, on that row, that a survey awaits its answer, so a turn
of a conversation without one costs nothing more.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.storage.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('survey_ticket_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('survey_until', connector.storage.db.UTCDateTime(),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('survey_until')
        batch_op.drop_column('survey_ticket_id')
