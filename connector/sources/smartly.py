"""Smartly.ai bot events: `{"event": ..., "payload": {...}}`, the key in the URL's query.

`message_received` (one bot turn) appends the user's input and the bot's
answer, with the turn's context, and asks for a handover when `need_help` is
set; a quick reply's `payload` (text, or an object with a text `payload`) is
passed on as `Inbound.reply` (a satisfaction rating, `domain.csat`);
`escalation_requested` asks for one. Other events are stored, not acted on.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationError

from connector.ingest.inbound import (
    BadInput,
    Inbound,
    Message,
    fingerprint,
    invalid,
    not_an_object,
)
from connector.sources.base import Auth, Id, Int64, Loose, Source

#: Turn context kept on each message (the whole payload stays on the inbound event).
CONTEXT_FIELDS = (
    "intent", "intent_slug", "confidence", "state_id", "state_name", "platform", "lang",
    "client_session_id", "handover_category_name", "skill_id", "need_help", "muted",
    "input_type", "understood", "event_name",
)

#: Routing ids are stored in 200-character columns.
ShortId = Annotated[str, Field(max_length=200)] | Int64


class Envelope(Loose):
    event: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any]


class TurnPayload(Loose):
    input: str | None = None
    answer: str | None = None
    user_id: Id | None = None
    client_id: Id | None = None
    need_help: bool | None = None
    muted: bool | None = None
    lang: str | None = Field(None, max_length=50)
    platform: str | None = Field(None, max_length=100)
    skill_id: ShortId | None = None
    handover_category_name: str | None = Field(None, max_length=200)
    intent: str | None = None
    state_name: str | None = None
    confidence: float | None = None
    client_session_id: str | None = None
    #: The chosen quick reply's or button's payload: a text, or an object holding it as
    #: `payload` (anything else is kept in the raw body only).
    payload: Any = None


class EscalationPayload(Loose):
    user_id: Id | None = None
    client_id: Id | None = None
    skill_id: ShortId | None = None
    lang: str | None = Field(None, max_length=50)
    plateform: str | None = Field(None, max_length=100)
    platform: str | None = Field(None, max_length=100)
    handover_category_name: str | None = Field(None, max_length=200)


class Smartly(Source):
    name: ClassVar[str] = "smartly"
    label: ClassVar[str] = "Smartly"
    segment: ClassVar[str] = "smartly"
    auth: ClassVar[Auth] = "key"

    def parse(self, integration_id: str, body: Any, raw: bytes) -> Inbound:
        if not isinstance(body, dict):
            raise not_an_object()
        event, payload = body.get("event"), body.get("payload")
        if not (type(event) is str and 0 < len(event) <= 200 and type(payload) is dict):
            try:  # the envelope is wrong somewhere: let the model say precisely where
                env = Envelope.model_validate(body)
            except ValidationError as exc:
                raise invalid(exc) from None
            event, payload = env.event, env.payload
        if event == "message_received":
            try:
                turn = TurnPayload.model_validate(payload)
            except ValidationError as exc:
                raise invalid(exc, "payload.") from None
            return self._turn(integration_id, event, raw, turn, payload)
        if event == "escalation_requested":
            try:
                escalation = EscalationPayload.model_validate(payload)
            except ValidationError as exc:
                raise invalid(exc, "payload.") from None
            platform = escalation.platform or escalation.plateform
            return Inbound(self.name, integration_id, event, fingerprint(raw), raw.decode(),
                           True, _user(escalation), None, None, escalation.lang, platform,
                           "escalation_requested", _id(escalation.skill_id),
                           escalation.handover_category_name)
        return Inbound(self.name, integration_id, event, fingerprint(raw), raw.decode())

    def _turn(self, integration_id: str, event: str, raw: bytes, p: TurnPayload,
              payload: dict[str, Any]) -> Inbound:
        messages: list[Message] = []
        if p.input:
            messages.append(("user", p.input, None))
        if p.answer:
            messages.append(("bot", p.answer, {"text": p.answer}))
        context = {k: payload[k] for k in CONTEXT_FIELDS if k in payload}
        inbound = Inbound(self.name, integration_id, event, fingerprint(raw), raw.decode(),
                          True, _user(p), messages, context, p.lang, p.platform,
                          reply=_reply(p.payload))
        if p.need_help:
            inbound.handover = "need_help"
            inbound.skill_id, inbound.category = _id(p.skill_id), p.handover_category_name
        return inbound


def _user(payload: TurnPayload | EscalationPayload) -> str:
    who = payload.user_id if payload.user_id not in (None, "") else payload.client_id
    if who in (None, ""):
        raise BadInput([{"field": "payload.user_id",
                         "message": "user_id or client_id is required"}])
    end_user = str(who)
    if len(end_user) > 500:
        raise BadInput([{"field": "payload.user_id", "message": "longer than 500 characters"}])
    return end_user


def _reply(payload: Any) -> str | None:
    """The quick reply's payload, if the turn carries one as text (at most 200 characters:
    ours are short), directly or as `payload.payload`."""
    if isinstance(payload, dict):
        payload = payload.get("payload")
    return payload if isinstance(payload, str) and 0 < len(payload) <= 200 else None


def _id(value: str | int | None) -> str | None:
    return None if value is None else str(value)
