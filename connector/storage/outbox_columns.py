"""What every outbox table has: its delivery state, lease and timings.

The reply outbox (`models.Delivery`) and the event webhooks' (`webhook_models.
WebhookDelivery`) are claimed, sent and recorded the same way (`delivery.outbox_worker`),
so they share these columns, declared once. A table adds its own before and after them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Field, SQLModel

from connector.storage.db import UTCDateTime, utcnow


def time_field(nullable: bool = False, **kw: Any) -> Any:
    """A UTC timestamp column: now by default, or NULL when `nullable`."""
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, **kw)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, **kw)


class OutboxState(SQLModel):
    """A row of an outbox: queued | retrying | delivered | failed, its attempts, lease
    (`lease_until`) and when it is due, what the last attempt got, and its give-up clock
    (`retry_since`: creation, or the last manual resend)."""

    state: str = Field(max_length=20)  # queued | retrying | delivered | failed
    attempts: int = 0
    next_attempt_at: dt.datetime = time_field()
    lease_until: dt.datetime | None = time_field(nullable=True)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: dt.datetime = time_field()
    #: Start of the current give-up clock (creation, or the last manual resend).
    retry_since: dt.datetime = time_field()
    updated_at: dt.datetime = time_field()
    delivered_at: dt.datetime | None = time_field(nullable=True)
