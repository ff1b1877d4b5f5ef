"""What the agent API answers with: the JSON shapes of its 2xx bodies, as models.

The routes build these bodies as plain dicts (`tickets.summary`, `integration_out`,
...); these models only describe them, for `/api/openapi.json`. Every object is
closed (`additionalProperties: false`) and lists the fields it always has as
required, so the schemathesis test (tests/test_openapi_fuzz.py), which checks every
answer of the real server against them, fails when a route's answer and its
description part.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from pydantic.json_schema import SkipJsonSchema

from connector.domain.roles import Role
from connector.domain.tickets import State as TicketState
from connector.sources import SOURCES


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _absent_unless_set(schema: dict[str, Any]) -> None:
    """A field that is left out rather than null: no `null` default in its schema."""
    schema.pop("default", None)


class Me(Closed):
    id: int
    username: str
    role: Role
    display_name: str = Field(description="As colleagues see them; the username when unset")
    must_change_password: bool = Field(
        description="Only the session, sign-out and POST /api/me/password are answered "
                    "(others: 403 password_change_required) until the password is changed")


class SignedIn(Closed):
    user: Me
    csrf_token: str


class Session(Closed):
    user: Me
    csrf_token: str
    cursor: int = Field(description="Stream cursor to resume the live stream from.")
    waiting_threshold_seconds: float
    routing: Literal["auto", "manual"] = Field(
        description="auto: queued tickets are assigned by the service (CONNECTOR_ROUTING)")


class SignedOut(Closed):
    status: Literal["signed out"]


class PasswordChanged(Closed):
    status: Literal["password changed"]


class Csat(Closed):
    """A ticket's satisfaction survey (`domain.csat`) and the end user's answer."""

    score: int | None = Field(ge=1, le=5, description="1 to 5; null: not answered (yet)")
    comment: str | None = Field(description="The end user's next message after the rating")
    at: dt.datetime | None = Field(description="When the rating arrived")
    sent_at: dt.datetime


class Ticket(Closed):
    id: int
    state: TicketState
    end_user: str
    integration_id: str
    conversation_id: int
    lang: str | None
    platform: str | None
    skill_id: str | None
    category: str | None
    reason: str
    assignee: str | None
    assignee_id: int | None
    opened_at: dt.datetime
    claimed_at: dt.datetime | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    wait_seconds: float | None
    first_response_seconds: float | None
    handling_seconds: float | None
    labels: list[str] = Field(description="Sorted, lower-case (`PATCH` sets them)")
    csat: Csat | None = Field(description="The satisfaction survey; null: none was sent")
    integration_kind: Literal["smartly", "chatlayer-offloading"] | None = Field(
        description="Its integration's kind (`chatlayer-offloading`: it can be handed back "
                    "to the bot)")


class TicketPage(Closed):
    tickets: list[Ticket]
    page: int
    per_page: int
    total: int
    cursor: int


class DeliveryState(Closed):
    id: int
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class Message(Closed):
    """A transcript message; agent replies carry their delivery state."""

    id: int
    seq: int
    conversation_id: int
    ticket_id: int | None
    kind: str
    author: str | None
    text: str
    message: Any = Field(description="The original message object (JSON), if any.")
    context: Any = Field(description="The bot's context for the turn (JSON), if any.")
    created_at: dt.datetime | None
    delivery: DeliveryState | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_unless_set)


class TranscriptMessage(Message):
    raw: Any = Field(description="The raw webhook payload the message came from, or null.")


class Transition(Closed):
    model_config = ConfigDict(populate_by_name=True)

    action: str
    from_: str | None = Field(alias="from")
    to: str
    actor: str | None = Field(description="Who did it; null when the system did (see reason)")
    assignee: str | None
    at: dt.datetime
    reason: str | None = Field(
        description="routing | fallback | agent_silent | inactive, for the system's own")


class TicketDetail(Ticket):
    messages: list[TranscriptMessage]
    transitions: list[Transition]


class TicketHistory(Closed):
    """The end user's earlier tickets of the same conversation one may open, newest
    first (at most 100)."""

    ticket_id: int
    tickets: list[Ticket]


class LabelSuggestion(Closed):
    label: str
    tickets: int = Field(description="How many tickets one may see carry it")


class LabelSuggestions(Closed):
    labels: list[LabelSuggestion]


class Resent(Closed):
    message_id: int
    delivery: DeliveryState


class AgentLoad(Closed):
    username: str
    role: Role
    open_tickets: int


class QueueGroup(Closed):
    """Waiting tickets of one category or language."""

    key: str | None = Field(description="The category or language; null: none given")
    waiting: int
    oldest_wait_seconds: float = Field(description="The longest wait in the group")


class Queue(Closed):
    waiting: int
    oldest_wait_seconds: float | None
    tickets_per_agent: dict[str, int]
    agents_online: list[AgentLoad]
    connected_here: int
    by_category: list[QueueGroup] = Field(description="Longest wait first")
    by_language: list[QueueGroup] = Field(description="Longest wait first")
    first_response_targets: dict[str, int] = Field(
        description="Each integration's first-response target in seconds, by integration id")
    first_response_breaches: int = Field(
        description="Open tickets unanswered past their integration's target")
    breaching: list[int] = Field(description="Those tickets' ids")


class QueuePoint(Closed):
    at: dt.datetime
    waiting: int
    oldest_wait_seconds: float
    mean_wait_seconds: float | None


class QueueHistory(Closed):
    bucket_seconds: int
    points: list[QueuePoint]


class Agent(Closed):
    username: str
    role: Role
    open_tickets: int
    online: bool
    status: Literal["online", "away", "offline"]
    connected: bool = Field(description="A console of theirs is open on some instance")
    display_name: str
    max_concurrent: int = Field(description="Their capacity, the default when unset")
    oldest_open_seconds: float | None = Field(
        description="Since the handover of the oldest conversation they hold")


class Agents(Closed):
    agents: list[Agent]


def _integration(with_key: bool, with_secret: bool = False) -> dict[str, Any]:
    """The fields of `integrations.describe`, with each source's webhook URL: those that
    carry the key only `with_key` (at creation and rotation); the signing secret only
    `with_secret` (at creation and its rotation)."""
    urls = {s.url_field: (str | None, ...) for s in SOURCES.values() if s.auth != "key"}
    keyed = {s.url_field: (str | None, ...) for s in SOURCES.values() if s.auth == "key"}
    return {"id": (str, ...), "name": (str, ...),
            "kind": (Literal["smartly", "chatlayer-offloading"], ...),
            "disabled": (bool, Field(description="Its webhooks refused (403), its replies "
                                                 "waiting")),
            "channel_url": (str, Field(description="The Chatlayer Webhook channel (smartly); "
                                                   "empty for chatlayer-offloading")),
            "api_url": (str | None, ...),
            "api_token_set": (bool, Field(description="Whether an API token is set (it is "
                                                      "never shown)")),
            "bot_id": (str | None, Field(description="The Chatlayer bot it serves, bound by "
                                                     "its first event")),
            "handback_action": (dict[str, Any] | None, ...),
            "verify_token": (str, ...), **urls, "created_at": (dt.datetime, ...),
            "key_rotated_at": (dt.datetime | None, ...),
            "previous_key_valid_until": (dt.datetime | None, ...),
            "signing_secret_rotated_at": (dt.datetime | None, Field(
                description="When the signing secret was last rotated; null: made with the "
                            "integration")),
            "previous_signing_secret_valid_until": (dt.datetime | None, Field(
                description="Until when the rotated-out signing secret also signs")),
            "queue_message": (str | None, ...), "assigned_message": (str | None, ...),
            "offline_message": (str | None, ...),
            "business_hours": (dict[str, Any] | None, ...),
            "first_response_target_seconds": (int, ...),
            "survey_question": (str | None, ...), "survey_labels": (list[str] | None, ...),
            **({**keyed, "key": (str, ...)} if with_key else {}),
            **({"signing_secret": (str, Field(
                description="whsec_...: verifies the Standard Webhooks signature of our "
                            "replies to the channel; shown only now"))} if with_secret else {})}


Integration = create_model("Integration", __base__=Closed, **_integration(False))
IntegrationWithKey = create_model(
    "IntegrationWithKey", __base__=Closed, **_integration(True),
    __doc__="At creation and rotation only: the key, and the "
            f"{' and '.join(s.label for s in SOURCES.values() if s.auth == 'key')} URL "
            "that carries it.")
IntegrationCreated = create_model(
    "IntegrationCreated", __base__=Closed, **_integration(True, True),
    __doc__="At creation only: the key, the URL that carries it, and the signing secret.")
IntegrationWithSigningSecret = create_model(
    "IntegrationWithSigningSecret", __base__=Closed, **_integration(False, True),
    __doc__="At the signing secret's rotation only: the new secret.")


class Integrations(Closed):
    integrations: list[Integration]


class Delivery(DeliveryState):
    """A delivery as the admin table shows it (`outbox.recent`); `last_error` is null
    once delivered."""

    message_id: int
    integration_id: str
    created_at: dt.datetime
    recipient: str = Field(description="The end user's id at the channel")
    ticket_id: int | None = Field(description="The ticket the message belongs to, if any")
    excerpt: str = Field(description="The message's text (at most 120 characters), or what "
                                     "it carries: [image], [carousel of 3]...")


class ChannelTestOut(Closed):
    """A test message sent to the channel from the admin page, and its outcome."""

    id: int
    recipient: str
    excerpt: str
    ok: bool
    status: int | None
    error: str | None = Field(description="What went wrong; null when it was delivered")
    duration_ms: float
    at: dt.datetime


class Deliveries(Closed):
    deliveries: list[Delivery]
    tests: list[ChannelTestOut] = Field(description="The latest test sends, newest first")


class TestResult(Closed):
    """What the channel answered to a test message (`ok` false when unreachable)."""

    ok: bool
    status: int | None
    error: str | SkipJsonSchema[None] = Field(
        default=None, description="The transport error's name, when nothing answered.",
        json_schema_extra=_absent_unless_set)
    duration_ms: float


class Profile(Closed):
    """A user's routing profile (`domain.agents.describe`)."""

    id: int
    username: str
    role: Role
    display_name: str
    status: Literal["online", "away", "offline"]
    max_concurrent: int | None = Field(
        description="Open conversations at most; null: the default, CONNECTOR_AGENT_CAPACITY")
    skills: list[str] = Field(description="Languages and categories taken; empty: any")


class UserOut(Profile):
    disabled: bool
    must_change_password: bool = Field(
        description="The user must choose a new password at their next sign-in")
    created_at: dt.datetime


class Users(Closed):
    users: list[UserOut]


class CsatFigures(Closed):
    """Satisfaction surveys of a group's tickets (`csat.Tally`)."""

    surveys: int = Field(description="Surveys sent")
    answers: int = Field(description="Surveys answered with a rating")
    average: float | None = Field(description="Mean rating; null: no answer")
    distribution: dict[Literal["1", "2", "3", "4", "5"], int] = Field(
        description="Answers per rating")
    response_rate: float | None = Field(description="answers / surveys; null: no survey")


class ReportGroup(Closed):
    """Figures of the tickets handed over in a report's range, for one group (or all)."""

    key: str | None = Field(description="The UTC date, agent's username, integration id or "
                                        "category; null: none (never assigned, no category), "
                                        "or the total")
    label: str
    handovers: int
    wait_median_seconds: float | None
    wait_p90_seconds: float | None
    first_response_median_seconds: float | None
    first_response_p90_seconds: float | None
    handling_median_seconds: float | None
    requeues: int = Field(description="Times taken back from a silent agent")
    auto_resolved: int = Field(description="Resolved for inactivity")
    csat: CsatFigures


class TicketReport(Closed):
    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date = Field(alias="from")
    to: dt.date
    by: Literal["day", "agent", "integration", "category"]
    groups: list[ReportGroup] = Field(
        description="By day: every date of the range, oldest first; otherwise most "
                    "handovers first")
    total: ReportGroup


class SearchHit(Closed):
    ticket_id: int = Field(description="The ticket to open (for the bot's history: the "
                                       "latest of the conversation one may see)")
    message_id: int
    conversation_id: int
    kind: Literal["user", "bot", "agent", "note"]
    created_at: dt.datetime
    state: TicketState
    integration_id: str
    snippet: list[tuple[str, bool]] = Field(
        description="The text around the first match as [text, matched] parts")


class SearchPage(Closed):
    results: list[SearchHit]
    next_before: int | None = Field(description="`before` for the next page; null: last page")


class TicketsCsv(RootModel[str]):
    """RFC 4180 CSV, one row per ticket handed over in the range (UTC dates): id,
    integration, end_user, category, language, opened, assigned, first_response, resolved,
    wait_seconds, first_response_seconds, handling_seconds, requeues, agent. A cell
    starting with =, +, -, @, tab or CR has a leading apostrophe."""


class CannedResponse(Closed):
    """A canned response (`domain.canned`); `editable`: the caller may change it."""

    id: int
    scope: Literal["shared", "personal"]
    shortcut: str
    text: str = Field(description="As written: {agent} and {end_user} are filled by the "
                                  "console when inserted")
    editable: bool
    updated_at: dt.datetime


class CannedResponses(Closed):
    canned_responses: list[CannedResponse] = Field(
        description="The shared ones and the caller's own, by shortcut")


class CannedDeleted(Closed):
    id: int
    deleted: Literal[True]
