"""Chatlayer's Offloading webhook: a Chatlayer bot hands conversations to this desk.

One URL (`/hooks/chatlayer-offloading/<integration id>?key=...`) takes three calls:

- `GET ?challenge.verifyToken=V`, Chatlayer's health check when the admin saves the
  webhook: `{"status": "ok"}` with the integration's verify token, 401 otherwise
  (`health`);
- `POST {"event": "messages", "botId", "version", "sessionId", "channel",
  "timestamp", "messages": [{"actor": "user"|"bot", "message", "timestamp"}]}`:
  every conversation's new messages, kept as that session's transcript so that the
  agent sees what came before a handover;
- `POST {"event": "offload", "botId", "sessionId", "channel", "payload",
  "transcript": [...], "version"}`: the bot asks for a human. A ticket opens (once:
  resent events find it open) with the payload as the handover's context, and the
  answer is `{"offloadSuccess": true, "pauseBot": true}`, sent only after the ticket
  is committed. The transcript fills the conversation only when it holds nothing yet
  (its messages usually arrived before, as `messages` events).

The end user is the session (`sessionId`). One integration serves one bot: the first
event's `botId` is bound to it (`bind_bot`), and its replies go through Chatlayer's
conversation actions API for that bot (`channels.chatlayer_actions`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError

from connector.ingest.inbound import BadInput, Inbound, Message, fingerprint, invalid
from connector.ingest.inbound import Result as IngestResult
from connector.sources.base import Auth, Loose, Source
from connector.sources.chatlayer import message_text

NAME = "chatlayer-offloading"
#: The query parameter of Chatlayer's health check (and of its other calls).
CHALLENGE = "challenge.verifyToken"
#: What Chatlayer is told when it offloads a session: the desk took it, pause the bot.
OFFLOADED = {"offloadSuccess": True, "pauseBot": True}

SessionId = Annotated[str, Field(min_length=1, max_length=500)]
BotId = Annotated[str, Field(min_length=1, max_length=200)]
Short = Annotated[str, Field(max_length=100)]


class Item(Loose):
    actor: Literal["user", "bot"]
    message: dict[str, Any]


class Common(Loose):
    botId: BotId
    sessionId: SessionId
    channel: Short | None = None
    version: Short | None = None
    language: Annotated[str, Field(max_length=50)] | None = None
    locale: Annotated[str, Field(max_length=50)] | None = None


class MessagesBody(Common):
    messages: list[Item] = Field(max_length=1000)


class OffloadBody(Common):
    transcript: list[Item] = Field(default_factory=list, max_length=5000)
    payload: dict[str, Any] | None = None


def user_text(message: dict[str, Any]) -> str:
    """What an end user's Chatlayer message says, as one line of text (the object is
    kept whole beside it): a text, a button's title, a file's links, a location's
    coordinates, or that the conversation started."""
    kind = message.get("messageType")
    if isinstance(message.get("text"), str) and message["text"]:
        return message["text"]
    if kind == "postback" and isinstance(message.get("title"), str):
        return message["title"]
    if kind in ("fileUploadInputResult", "upload"):
        urls = [u for u in _list(message.get("urls")) if isinstance(u, str)]
        data = message.get("data")
        if isinstance(data, dict) and isinstance(data.get("fileUrl"), str):
            urls.append(data["fileUrl"])
        return "[file] " + " ".join(dict.fromkeys(urls)) if urls else "[file]"
    if kind == "location":
        where = coordinates(message)
        return f"[location] {where[0]}, {where[1]}" if where else "[location]"
    if kind == "intro":
        return "[conversation started]"
    return f"[{kind}]" if isinstance(kind, str) and kind else "[message]"


def coordinates(message: dict[str, Any]) -> tuple[float, float] | None:
    """A location message's (latitude, longitude), if they are numbers in range."""
    c = message.get("coordinates")
    if not isinstance(c, dict):
        return None
    lat, long = c.get("lat"), c.get("long", c.get("lng"))
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in (lat, long)):
        return None
    return (lat, long) if -90 <= lat <= 90 and -180 <= long <= 180 else None  # type: ignore[operator,return-value]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _messages(items: list[Item]) -> list[Message]:
    return [(item.actor, user_text(item.message) if item.actor == "user"
             else message_text(item.message), item.message) for item in items]


class ChatlayerOffloading(Source):
    name: ClassVar[str] = NAME
    label: ClassVar[str] = "Chatlayer Offloading"
    segment: ClassVar[str] = NAME
    auth: ClassVar[Auth] = "key"
    kinds: ClassVar[tuple[str, ...]] = (NAME,)
    health_check: ClassVar[bool] = True

    @property
    def url_field(self) -> str:
        return "offloading_webhook_url"

    def parse(self, integration_id: str, body: Any, raw: bytes) -> Inbound:
        if not isinstance(body, dict):
            raise BadInput([{"field": "body", "message": "must be a JSON object"}])
        event = body.get("event")
        if event == "messages":
            return self._messages(integration_id, body, raw)
        if event == "offload":
            return self._offload(integration_id, body, raw)
        if not isinstance(event, str) or not event:
            raise BadInput([{"field": "event", "message": "is required: messages or offload"}])
        return Inbound(self.name, integration_id, event[:200], fingerprint(raw), raw.decode())

    def _messages(self, integration_id: str, body: dict[str, Any], raw: bytes) -> Inbound:
        try:
            parsed = MessagesBody.model_validate(body)
        except ValidationError as exc:
            raise invalid(exc) from None
        return Inbound(self.name, integration_id, "messages", fingerprint(raw), raw.decode(),
                       True, parsed.sessionId, _messages(parsed.messages), _context(parsed),
                       parsed.language or parsed.locale, parsed.channel)

    def _offload(self, integration_id: str, body: dict[str, Any], raw: bytes) -> Inbound:
        try:
            parsed = OffloadBody.model_validate(body)
        except ValidationError as exc:
            raise invalid(exc) from None
        payload = parsed.payload or {}
        category = payload.get("category")
        return Inbound(
            self.name, integration_id, "offload", fingerprint(raw), raw.decode(), True,
            parsed.sessionId, _messages(parsed.transcript), _context(parsed),
            parsed.language or parsed.locale, parsed.channel, "offload",
            category=category[:200] if isinstance(category, str) and category else None,
            backfill=True, handover_context=payload)

    def answer(self, inbound: Inbound, result: IngestResult) -> tuple[int, Any]:
        """200 for every accepted call, as Chatlayer expects; an offload is told that the
        desk took the session (its ticket is committed by now)."""
        if inbound.event == "offload":
            return 200, {**OFFLOADED, "ticket_id": result.ticket_id}
        return 200, {"status": result.status, "event_id": result.event_id}


    def bot_of(self, inbound: Inbound) -> str | None:
        bot = (inbound.context or {}).get("bot_id") if inbound.known else None
        return bot if isinstance(bot, str) else None


def _context(parsed: Common) -> dict[str, Any]:
    return {"source": NAME, "bot_id": parsed.botId, "channel": parsed.channel,
            "version": parsed.version}
