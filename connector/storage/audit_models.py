"""The audit trail's table (`domain.audit`): who did what, when, from where.

Kept beside `models` (which imports it, so it is in the one metadata the
migrations and their test compare) to keep each module small.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from connector.storage.db import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    """One recorded action. Written in the transaction of the action it records, so
    an action rolled back leaves no row; never holds a secret (`domain.audit`)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_at", "at"),
        sa.Index("ix_audit_event_action", "action", "id"),
        sa.Index("ix_audit_event_actor", "actor_id", "id"),
        sa.Index("ix_audit_event_target", "target_type", "target_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    #: The staff member who acted; None for the CLI, the system or an anonymous caller.
    #: No foreign key: the trail outlives what it names.
    actor_id: int | None = None
    #: Their username then (a snapshot), `cli` for the command line, None for the system.
    actor: str | None = Field(default=None, max_length=100)
    role: str | None = Field(default=None, max_length=20)
    #: The client's address (`web.proxies`), `local` for the command line.
    address: str | None = Field(default=None, max_length=100)
    #: `user.created`, `integration.key_rotated`, ... (`domain.audit.ACTIONS`).
    action: str = Field(max_length=60)
    target_type: str | None = Field(default=None, max_length=30)
    target_id: str | None = Field(default=None, max_length=200)
    #: {"field": {"before": ..., "after": ...}}; a secret only as {"changed": true}.
    changes: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    #: The request's id (`X-Request-Id`, `logs.request_id`), to find its log lines.
    request_id: str | None = Field(default=None, max_length=100)
