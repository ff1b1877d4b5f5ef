"""Tables. SQLModel classes for readable access; hot paths use `Model.__table__`.

Every timestamp is a `UTCDateTime`. Integer ids that clients see as order
(message `seq`, stream `cursor`) are assigned inside the writing transaction
from a locked counter row, never inferred from autoincrement, so they are
gap-free in commit order on PostgreSQL as well as SQLite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# audit_models and webhook_models: tables in modules of their own (small modules),
# imported here so that they are in the one metadata.
from connector.storage.audit_models import AuditEvent  # noqa: F401
from connector.storage.outbox_columns import OutboxState, time_field
from connector.storage.webhook_models import (  # noqa: F401
    WebhookDelivery,
    WebhookSubscription,
)


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=sa.JSON, nullable=nullable)


_time = time_field


class Integration(SQLModel, table=True):
    __tablename__ = "integration"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    channel_url: str = Field(max_length=2000)
    #: Sent inside every body we POST to the channel, so it is kept as given.
    verify_token: str = Field(max_length=500)
    key_hash: str = Field(max_length=64)
    previous_key_hash: str | None = Field(default=None, max_length=64)
    previous_key_expires_at: dt.datetime | None = _time(nullable=True)
    created_at: dt.datetime = _time()
    key_rotated_at: dt.datetime | None = _time(nullable=True)
    #: Told to the end user (`routing.notices`); None or empty: nothing is sent.
    queue_message: str | None = Field(default=None, max_length=1000)
    assigned_message: str | None = Field(default=None, max_length=1000)
    offline_message: str | None = Field(default=None, max_length=1000)
    #: {"timezone", "weekly": {"mon": [["09:00", "18:00"]], ...}, "closed_dates": [...]}
    business_hours: Any = _json()
    first_response_target_seconds: int = Field(
        default=120, sa_column_kwargs={"server_default": "120"})
    #: The satisfaction survey sent on resolve (issue 14); None: the defaults.
    survey_question: str | None = Field(default=None, max_length=500)
    #: Five labels for the ratings 1..5, in the integration's language.
    survey_labels: Any = _json()
    #: `smartly` (Smartly webhooks in, the Chatlayer Webhook channel out) or
    #: `chatlayer-offloading` (Chatlayer's Offloading webhook in, its conversation actions
    #: API out: `api_url`, `api_token`, `bot_id`), `accounts.integrations.KINDS`.
    kind: str = Field(default="smartly", max_length=30,
                      sa_column_kwargs={"server_default": "smartly"})
    api_url: str | None = Field(default=None, max_length=2000)
    #: Sent as the bearer token of every API call, so it is kept as given (never shown
    #: again after it is set).
    api_token: str | None = Field(default=None, max_length=2000)
    #: The Chatlayer bot whose sessions this integration takes (the first event's `botId`).
    bot_id: str | None = Field(default=None, max_length=200)
    #: The body of the conversation action that un-pauses the bot; None: the default
    #: (`channels.chatlayer_actions.DEFAULT_HANDBACK`).
    handback_action: Any = _json()
    #: Signs what we send to the channel (Standard Webhooks, `outbound.signing`). An HMAC
    #: key must be usable, so it is kept as given (as `verify_token` is); shown only at
    #: creation and rotation. "": unsigned.
    signing_secret: str = Field(default="", max_length=100,
                                sa_column_kwargs={"server_default": ""})
    #: The rotated-out secret, still signing (a second signature) until it expires.
    previous_signing_secret: str | None = Field(default=None, max_length=100)
    previous_signing_secret_expires_at: dt.datetime | None = _time(nullable=True)
    signing_secret_rotated_at: dt.datetime | None = _time(nullable=True)
    #: Disabled: its webhooks are refused (403 `integration_disabled`, nothing stored) and
    #: its queued deliveries wait, paused, until it is enabled again.
    disabled: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, unique=True)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=20)
    disabled: bool = False
    created_at: dt.datetime = _time()
    password_changed_at: dt.datetime = _time()
    #: online | away | offline (`routing.availability`).
    status: str = Field(default="offline", max_length=10,
                        sa_column_kwargs={"server_default": "offline"})
    status_at: dt.datetime | None = _time(nullable=True)
    #: When the user's last console closed anywhere (`realtime.presence`); None while one
    #: is open.
    console_gone_at: dt.datetime | None = _time(nullable=True)
    #: Open conversations at most; None: `CONNECTOR_AGENT_CAPACITY`.
    max_concurrent: int | None = None
    #: Languages and categories this agent takes; None or empty: any ticket.
    skills: Any = _json()
    last_assigned_at: dt.datetime | None = _time(nullable=True)
    display_name: str | None = Field(default=None, max_length=100)
    #: The password must be replaced before anything else (`accounts.users`): set for the
    #: generated first admin and by admins; cleared when the user changes it.
    must_change_password: bool = Field(default=False,
                                       sa_column_kwargs={"server_default": sa.false()})


class UserSession(SQLModel, table=True):
    __tablename__ = "user_session"

    #: sha256 of the cookie value; the cookie itself is never stored.
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: dt.datetime = _time()
    last_seen_at: dt.datetime = _time()
    revoked_at: dt.datetime | None = _time(nullable=True)


class LoginThrottle(SQLModel, table=True):
    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    first_failure_at: dt.datetime = _time()
    locked_until: dt.datetime | None = _time(nullable=True)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"
    __table_args__ = (sa.UniqueConstraint("integration_id", "end_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    integration_id: str = Field(foreign_key="integration.id", max_length=32)
    end_user_id: str = Field(max_length=500)
    last_seq: int = 0
    open_ticket_id: int | None = None
    lang: str | None = Field(default=None, max_length=50)
    platform: str | None = Field(default=None, max_length=100)
    created_at: dt.datetime = _time()
    updated_at: dt.datetime = _time()
    #: A satisfaction survey awaiting its answer (`domain.csat`): the surveyed ticket, and
    #: until when a rating (then a comment) is taken; None: no survey pending.
    survey_ticket_id: int | None = None
    survey_until: dt.datetime | None = _time(nullable=True)


class InboundEvent(SQLModel, table=True):
    """Every accepted webhook body, as received (the raw payload of each turn)."""

    __tablename__ = "inbound_event"

    id: int | None = Field(default=None, primary_key=True)
    integration_id: str = Field(foreign_key="integration.id", max_length=32, index=True)
    #: sha256 of the body as received; within the dedupe window at most one row per value.
    fingerprint: str = Field(max_length=64)
    source: str = Field(max_length=20)
    event: str = Field(max_length=200)
    status: str = Field(max_length=20)
    #: The body exactly as received (UTF-8 JSON text), byte for byte.
    raw: str = Field(sa_type=sa.Text)
    received_at: dt.datetime = _time()


class DedupeKey(SQLModel, table=True):
    __tablename__ = "dedupe_key"

    integration_id: str = Field(primary_key=True, max_length=32)
    fingerprint: str = Field(primary_key=True, max_length=64)
    seen_at: dt.datetime = _time(index=True)


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    integration_id: str = Field(foreign_key="integration.id", max_length=32)
    state: str = Field(max_length=20, index=True)
    assignee_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    reason: str = Field(max_length=50)
    lang: str | None = Field(default=None, max_length=50)
    platform: str | None = Field(default=None, max_length=100)
    skill_id: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    opened_at: dt.datetime = _time()
    claimed_at: dt.datetime | None = _time(nullable=True)
    first_response_at: dt.datetime | None = _time(nullable=True)
    resolved_at: dt.datetime | None = _time(nullable=True)
    version: int = 1
    #: The latest assignment (routing, claim, transfer), and the latest entry in the queue.
    assigned_at: dt.datetime | None = _time(nullable=True)
    queued_at: dt.datetime | None = _time(nullable=True)
    requeues: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    #: The agent the ticket was taken from for silence: routed elsewhere when possible.
    avoid_user_id: int | None = None
    #: Satisfaction: when the survey was sent, and the end user's answer.
    survey_sent_at: dt.datetime | None = _time(nullable=True)
    csat_score: int | None = None
    csat_comment: str | None = Field(default=None, max_length=1000)
    csat_at: dt.datetime | None = _time(nullable=True)


class TicketTransition(SQLModel, table=True):
    __tablename__ = "ticket_transition"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    action: str = Field(max_length=30)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    assignee_id: int | None = Field(default=None, foreign_key="app_user.id")
    at: dt.datetime = _time()
    #: Why, when not a person's plain action: routing | agent_silent | inactive | fallback.
    reason: str | None = Field(default=None, max_length=30)


class TicketLabel(SQLModel, table=True):
    """A free-form label on a ticket."""

    __tablename__ = "ticket_label"

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    label: str = Field(primary_key=True, max_length=50, index=True)


class CannedResponse(SQLModel, table=True):
    """A saved reply: shared (`owner_id` None, managed by staff) or an agent's own."""

    __tablename__ = "canned_response"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=10)  # shared | personal
    owner_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    shortcut: str = Field(max_length=50)
    text: str = Field(max_length=4000)
    created_at: dt.datetime = _time()
    updated_at: dt.datetime = _time()


class IdempotentRequest(SQLModel, table=True):
    """The first answer to a request sent with an `Idempotency-Key`, per user and key."""

    __tablename__ = "idempotent_request"

    user_id: int = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    #: method and path, and the body's sha256: the same key for another request is refused.
    target: str = Field(max_length=300)
    fingerprint: str = Field(max_length=64)
    status: int
    response: Any = _json(nullable=False)
    created_at: dt.datetime = _time(index=True)


class ChannelTestSend(SQLModel, table=True):
    """An admin's test message to an integration's channel, and what it answered."""

    __tablename__ = "test_send"

    id: int | None = Field(default=None, primary_key=True)
    integration_id: str = Field(foreign_key="integration.id", max_length=32, index=True)
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    recipient_id: str = Field(max_length=500)
    text: str = Field(max_length=4000)
    ok: bool
    status: int | None = None
    error: str | None = Field(default=None, max_length=1000)
    duration_ms: float = 0.0
    at: dt.datetime = _time(index=True)


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (sa.UniqueConstraint("conversation_id", "seq"),
                      sa.Index("ix_message_ticket_kind", "ticket_id", "kind"))

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    seq: int
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    kind: str = Field(max_length=10)  # user | bot | agent | note | system
    author_id: int | None = Field(default=None, foreign_key="app_user.id")
    text: str = ""
    #: The original message object (Chatlayer message, or the reply we send).
    body: Any = _json()
    #: The bot's context for the turn: intent, confidence, state_name, ...
    context: Any = _json()
    event_id: int | None = Field(default=None, foreign_key="inbound_event.id")
    created_at: dt.datetime = _time()


class Delivery(OutboxState, table=True):
    """The outbox: one row per message to send to the channel."""

    __tablename__ = "delivery"
    __table_args__ = (
        sa.Index("ix_delivery_due", "state", "next_attempt_at"),
        sa.Index("ix_delivery_conversation", "conversation_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", unique=True)
    integration_id: str = Field(foreign_key="integration.id", max_length=32, index=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    recipient_id: str = Field(max_length=500)
    message: Any = _json(nullable=False)
    idempotency_key: str = Field(max_length=64, unique=True)
    # state, attempts, lease and timings: `OutboxState`


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    attempt: int
    at: dt.datetime = _time()
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=1000)
    duration_ms: float = 0.0
    outcome: str = Field(max_length=20)  # delivered | retry | failed


class StreamEvent(SQLModel, table=True):
    """The live stream, stored before it is sent: `id` is the client's cursor.

    Audience: staff with role supervisor/admin see everything; an agent sees an
    event when `public` is true (the queue) or their id is in `user_ids`.
    """

    __tablename__ = "stream_event"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    type: str = Field(max_length=40)
    ticket_id: int | None = None
    public: bool = False
    user_ids: Any = _json()
    payload: Any = _json(nullable=False)
    created_at: dt.datetime = _time(index=True)


class ConsolePresence(SQLModel, table=True):
    """An instance has at least one console of the user open (`realtime.presence`)."""

    __tablename__ = "console_presence"

    #: One run of one instance (`presence.new_instance_id`).
    instance_id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(primary_key=True, index=True)
    seen_at: dt.datetime = _time()


class Counter(SQLModel, table=True):
    """Named counters updated under a row lock (`stream` = last cursor)."""

    __tablename__ = "counter"

    name: str = Field(primary_key=True, max_length=40)
    value: int = 0
