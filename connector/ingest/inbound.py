"""Webhook events in, whatever bot platform sent them.

A source (`connector.sources`) validates a decoded body into an `Inbound` (or
raises `BadInput` naming every bad field), deciding there what the event
does; the writer (`ingest.apply`) carries that out knowing no platform. Both
are free of HTTP.

Dedupe: the platforms send no event id and may resend, so a body identical to
one received for the same integration within the dedupe window is a
duplicate: acknowledged, not stored again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import ValidationError

#: A message an event appends to its conversation: kind (`user`, `bot`), text, and the
#: original message object (or None).
Message = tuple[str, str, Any]


class BadInput(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(slots=True)
class Inbound:
    """One validated webhook event, ready to be written: what it does was decided by its
    source at parse time, in the same terms for every platform.

    The fields are positional on purpose: the SQLite writer process gets an event as
    the list of its fields (`ingest.process.shipped`) and rebuilds it with `Inbound(*fields)`.
    Only `known` events are written into a conversation; the others are stored as `ignored`.
    """

    #: The source's name (`inbound_event.source`).
    source: str
    integration_id: str
    event: str
    fingerprint: str
    #: The body as stored (without its source's secret fields).
    raw: str
    #: An event we act on; others are stored as `ignored` and answered 202.
    known: bool = False
    end_user_id: str | None = None
    #: Appended to the conversation in this order, each with `context`.
    messages: list[Message] | None = None
    context: dict[str, Any] | None = None
    #: The conversation's language and platform, when the event names them.
    lang: str | None = None
    platform: str | None = None
    #: The reason a handover is asked for (a ticket opens unless one is open), with its
    #: routing: the skill and the category.
    handover: str | None = None
    skill_id: str | None = None
    category: str | None = None
    #: The payload of the quick reply or button the end user chose, when the platform
    #: says (a satisfaction survey's rating, `domain.csat`).
    reply: str | None = None
    #: The messages fill the conversation only if it holds none yet (a transcript sent
    #: with a handover, whose messages usually arrived one by one before).
    backfill: bool = False
    #: What the bot platform says about the handover, shown to the agent with it.
    handover_context: dict[str, Any] | None = None


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


def not_an_object() -> BadInput:
    return BadInput([{"field": "body", "message": "must be a JSON object"}])


def invalid(exc: ValidationError, prefix: str = "") -> BadInput:
    """A pydantic error as `BadInput`: one message per field, named by its dotted path
    under `prefix`."""
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


def public_raw(text: str, secrets: Iterable[str]) -> Any:
    """A stored raw body as staff may see it: parsed, without the `secrets` fields (rows
    stored before secrets were stripped at ingest still hold them); the text itself when
    it does not parse."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(value, dict):
        for name in secrets:
            value.pop(name, None)
    return value
