"""The event webhooks' request bodies and answers (`api_webhooks`), for validation and
for `/api/openapi.json`, beside `schemas` and `responses` (kept small)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from connector.domain import webhooks
from connector.web.routes.responses import Closed
from connector.web.routes.schemas import Strict

EventType = Literal["ticket.created", "ticket.assigned", "ticket.requeued", "ticket.resolved",
                    "ticket.rated", "message.created"]
assert set(EventType.__args__) == set(webhooks.EVENTS)  # type: ignore[attr-defined]
URL = {"pattern": r"^https?://[^\s/?#]",
       "description": "An absolute http(s) URL of a public address (internal addresses are "
                      "refused unless in CONNECTOR_OUTBOUND_ALLOW_NETWORKS)."}
EVENTS = Field(min_length=1, max_length=len(webhooks.EVENTS) * 2,
               description="Event types to send (docs/webhooks.md)")


# --- requests --------------------------------------------------------------------------------

class WebhookIn(Strict):
    url: str = Field(min_length=1, max_length=webhooks.MAX_URL, json_schema_extra=URL)
    events: list[EventType] = EVENTS
    description: str | None = Field(default=None, max_length=webhooks.MAX_DESCRIPTION)


class WebhookPatch(Strict):
    url: str | None = Field(default=None, min_length=1, max_length=webhooks.MAX_URL,
                            json_schema_extra=URL)
    events: list[EventType] | None = Field(default=None, min_length=1,
                                           max_length=len(webhooks.EVENTS) * 2)
    description: str | None = Field(default=None, max_length=webhooks.MAX_DESCRIPTION)
    disabled: bool | None = None


class RotateSecretIn(Strict):
    grace_seconds: float | None = Field(
        default=None, ge=0, le=30 * 24 * 3600,
        description="How long the previous secret still signs; default "
                    "CONNECTOR_KEY_GRACE_SECONDS")


# --- answers ---------------------------------------------------------------------------------

class Webhook(Closed):
    """A subscription: never its secrets."""

    id: int
    url: str
    events: list[EventType]
    description: str | None
    disabled: bool
    disabled_reason: str | None = Field(
        description="Why the service disabled it (410 Gone); null when by an admin")
    previous_secret_expires_at: dt.datetime | None = Field(
        description="Until when the previous secret also signs; null: only one signs")
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookWithSecret(Webhook):
    secret: str = Field(description="whsec_...: shown this once (creation, rotation)")


class Webhooks(Closed):
    webhooks: list[Webhook]


class WebhookDeleted(Closed):
    status: Literal["deleted"]


class WebhookDelivery(Closed):
    id: int
    subscription_id: int
    event_type: str
    webhook_id: str = Field(description="The webhook-id header: the same on every attempt")
    state: Literal["queued", "retrying", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class WebhookDeliveries(Closed):
    deliveries: list[WebhookDelivery]
