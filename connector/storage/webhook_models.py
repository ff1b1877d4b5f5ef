"""Tables of the signed event webhooks (`domain.webhooks`): subscriptions and their outbox.

Kept beside `models` (which imports them, so they are in the one metadata the
migrations and their test compare) to keep each module small.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from connector.storage.outbox_columns import OutboxState
from connector.storage.outbox_columns import time_field as _time


class WebhookSubscription(SQLModel, table=True):
    """A URL of the customer's own systems and the events it wants.

    The signing secrets are stored as they are, not hashed: every request is
    signed with HMAC-SHA256 keyed by the secret itself, so we must be able to
    use it (a hash could only check a secret someone shows us). They are shown
    once, at creation and rotation, and never in a GET, a list or a log line.
    """

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    #: Event types (`webhooks.EVENTS`), sorted.
    events: Any = Field(sa_type=sa.JSON, nullable=False)
    description: str | None = Field(default=None, max_length=500)
    #: `whsec_` + base64 of 32 random bytes (Standard Webhooks).
    secret: str = Field(max_length=100)
    #: The secret before the last rotation: still signs (a second signature) until then.
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: dt.datetime | None = _time(nullable=True)
    disabled: bool = False
    #: Why the service disabled it (the receiver answered 410 Gone); None: by an admin.
    disabled_reason: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = _time()
    updated_at: dt.datetime = _time()


class WebhookDelivery(OutboxState, table=True):
    """The outbox of event webhooks: one row per event and subscription, its body as sent."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        sa.UniqueConstraint("subscription_id", "webhook_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhook_subscription.id", index=True)
    event_type: str = Field(max_length=50)
    #: The `webhook-id` header: `msg_` + a UUID, the same for every attempt and resend.
    webhook_id: str = Field(max_length=64)
    #: The JSON body exactly as sent (and signed).
    body: str = Field(sa_type=sa.Text)
    #: Attempts since it was queued or last re-sent by hand (the backoff's exponent).
    tries: int = 0
    # state, attempts, lease and timings: `OutboxState`
