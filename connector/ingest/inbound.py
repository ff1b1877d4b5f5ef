"""Webhook events in: Smartly.ai bot events and Chatlayer channel bot messages.

`parse_smartly` / `parse_chatlayer` validate a decoded body into an `Inbound`
(or raise `BadInput` naming every bad field); `ingest_write` writes batches of
them. Both are free of HTTP.

Dedupe: the platforms send no event id and may resend, so a body identical to
one received for the same integration within the dedupe window is a
duplicate: acknowledged, not stored again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

KNOWN_SMARTLY = ("message_received", "escalation_requested")
#: Turn context kept on each message (the whole payload stays on the inbound event).
CONTEXT_FIELDS = (
    "intent", "intent_slug", "confidence", "state_id", "state_name", "platform", "lang",
    "client_session_id", "handover_category_name", "skill_id", "need_help", "muted",
    "input_type", "understood", "event_name",
)

#: Integers are kept within 64 bits (a larger one cannot be written back as JSON).
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Id = str | Int64
#: Routing ids are stored in 200-character columns.
ShortId = Annotated[str, Field(max_length=200)] | Int64
#: Fields of a Chatlayer body that are secrets: never stored, never shown.
SECRET_FIELDS = ("verifyToken",)


class BadInput(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class _Loose(BaseModel):
    """Fields we act on are checked; any others are accepted and not copied into the
    model (the raw body keeps them): copying the rest of a turn doubled its validation."""

    model_config = ConfigDict(extra="ignore")


class Envelope(_Loose):
    event: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any]


class TurnPayload(_Loose):
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


class EscalationPayload(_Loose):
    user_id: Id | None = None
    client_id: Id | None = None
    skill_id: ShortId | None = None
    lang: str | None = Field(None, max_length=50)
    plateform: str | None = Field(None, max_length=100)
    platform: str | None = Field(None, max_length=100)
    handover_category_name: str | None = Field(None, max_length=200)


class ChatlayerRef(_Loose):
    id: Id


class ChatlayerBody(_Loose):
    verifyToken: str
    message: dict[str, Any]
    recipient: ChatlayerRef | None = None
    sender: ChatlayerRef | None = None
    senderId: Id | None = None

    @field_validator("message")
    @classmethod
    def _non_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("must be a non-empty message object")
        return value


@dataclass(slots=True)
class Inbound:
    """One validated webhook event, ready to be written."""

    source: Literal["smartly", "chatlayer"]
    integration_id: str
    event: str
    fingerprint: str
    body: dict[str, Any]
    raw: str
    end_user_id: str | None = None
    payload: BaseModel | None = None
    #: A turn's context for its messages (`CONTEXT_FIELDS` of the payload).
    context: dict[str, Any] | None = None

    @property
    def known(self) -> bool:
        """An event we act on; others are stored as `ignored` and answered 202."""
        return self.source == "chatlayer" or self.event in KNOWN_SMARTLY


@dataclass(slots=True)
class Result:
    """What became of an event. `rejected`: it cannot be stored, whenever it is sent
    (writing it alone failed for a reason of its own, not the database's state)."""

    status: Literal["processed", "duplicate", "ignored", "rejected"]
    event_id: int | None = None
    ticket_id: int | None = None
    opened: bool = False
    messages: list[int] = field(default_factory=list)


def fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _errors(exc: ValidationError, prefix: str = "") -> BadInput:
    out: dict[str, str] = {}
    for err in exc.errors():
        # Union members (str | int) add their type name to the location: drop it.
        loc = ".".join(str(p) for p in err["loc"] if not _union_tag(p))
        name = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body"
        out.setdefault(name, err["msg"])
    return BadInput([{"field": k, "message": v} for k, v in out.items()])


def _union_tag(part: object) -> bool:
    """Pydantic names the member of a union that failed (`str`, `constrained-str`)."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool")
                                      or part.startswith("constrained-"))


def _user(payload: TurnPayload | EscalationPayload, prefix: str = "payload.") -> str:
    who = payload.user_id if payload.user_id not in (None, "") else payload.client_id
    if who in (None, ""):
        raise BadInput([{"field": f"{prefix}user_id",
                         "message": "user_id or client_id is required"}])
    end_user = str(who)
    if len(end_user) > 500:
        raise BadInput([{"field": f"{prefix}user_id", "message": "longer than 500 characters"}])
    return end_user


def parse_smartly(integration_id: str, body: Any, raw: bytes) -> Inbound:
    if not isinstance(body, dict):
        raise BadInput([{"field": "body", "message": "must be a JSON object"}])
    event, payload = body.get("event"), body.get("payload")
    if not (type(event) is str and 0 < len(event) <= 200 and type(payload) is dict):
        try:  # the envelope is wrong somewhere: let the model say precisely where
            env = Envelope.model_validate(body)
        except ValidationError as exc:
            raise _errors(exc) from None
        event, payload = env.event, env.payload
    inbound = Inbound("smartly", integration_id, event, fingerprint(raw), body, raw.decode())
    model: type[TurnPayload] | type[EscalationPayload] | None = {
        "message_received": TurnPayload, "escalation_requested": EscalationPayload,
    }.get(event)
    if model is None:
        return inbound
    try:
        inbound.payload = model.model_validate(payload)
    except ValidationError as exc:
        raise _errors(exc, "payload.") from None
    inbound.end_user_id = _user(inbound.payload)  # type: ignore[arg-type]
    if model is TurnPayload:
        inbound.context = {k: payload[k] for k in CONTEXT_FIELDS if k in payload}
    return inbound


def parse_chatlayer(integration_id: str, body: Any, raw: bytes) -> Inbound:
    if not isinstance(body, dict):
        raise BadInput([{"field": "body", "message": "must be a JSON object"}])
    try:
        parsed = ChatlayerBody.model_validate(body)
    except ValidationError as exc:
        raise _errors(exc) from None
    ref = parsed.recipient or parsed.sender
    who = ref.id if ref is not None else parsed.senderId
    if who in (None, ""):
        raise BadInput([{"field": "recipient.id",
                         "message": "recipient.id, senderId or sender.id is required"}])
    kept = orjson.dumps({k: v for k, v in body.items() if k not in SECRET_FIELDS}).decode()
    return Inbound("chatlayer", integration_id, "bot_message", fingerprint(raw), body,
                   kept, end_user_id=str(who), payload=parsed)


def public_raw(text: str) -> Any:
    """A stored raw body as staff may see it: parsed, without secrets (rows stored before
    secrets were stripped at ingest still hold them); the text itself when it does not
    parse."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(value, dict):
        for name in SECRET_FIELDS:
            value.pop(name, None)
    return value


def message_text(message: Any) -> str:
    """A readable one-line text for any Chatlayer message object (whole object kept).

    Total: any JSON value gives a text (an odd shape gives a placeholder, never an error).
    """
    if not isinstance(message, dict):
        return "[message]"
    if isinstance(message.get("text"), str):
        return message["text"]
    attachment = message.get("attachment")
    if isinstance(attachment, dict):
        payload = attachment.get("payload")
        if not isinstance(payload, dict):
            payload = {}
        kind = attachment.get("type")
        if kind == "template":
            if isinstance(payload.get("text"), str):
                return payload["text"]
            elements = payload.get("elements")
            titles = [e["title"] for e in (elements if isinstance(elements, list) else ())
                      if isinstance(e, dict) and isinstance(e.get("title"), str)]
            template = payload.get("template_type")
            name = template if isinstance(template, str) else "template"
            return " | ".join(titles) or f"[{name}]"
        if isinstance(kind, str) and kind in {"image", "video", "audio", "file"}:
            return f"[{kind}]"
    return "[message]"
