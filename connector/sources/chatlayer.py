"""Chatlayer's Webhook channel: the bot's messages, with the verify token in the body.

Every body is one bot message to an end user (`recipient.id`, or `senderId`,
or `sender.id`): it is appended to that user's conversation, the whole
message object kept and a one-line text made of it. The verify token is
checked, then dropped from the stored body.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from pydantic import ValidationError, field_validator

from connector.ingest.inbound import BadInput, Inbound, fingerprint, invalid, not_an_object
from connector.sources.base import Auth, Id, Loose, Source

#: The body field holding the channel's verify token.
TOKEN_FIELD = "verifyToken"  # noqa: S105 - a field name, not a secret
#: Fields of a Chatlayer body that are secrets: never stored, never shown.
SECRET_FIELDS = (TOKEN_FIELD,)


class ChatlayerRef(Loose):
    id: Id


class ChatlayerBody(Loose):
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


class Chatlayer(Source):
    name: ClassVar[str] = "chatlayer"
    label: ClassVar[str] = "Chatlayer"
    segment: ClassVar[str] = "chatlayer"
    auth: ClassVar[Auth] = "token"
    token_field: ClassVar[str] = TOKEN_FIELD
    secret_fields: ClassVar[tuple[str, ...]] = SECRET_FIELDS

    def parse(self, integration_id: str, body: Any, raw: bytes) -> Inbound:
        if not isinstance(body, dict):
            raise not_an_object()
        try:
            parsed = ChatlayerBody.model_validate(body)
        except ValidationError as exc:
            raise invalid(exc) from None
        ref = parsed.recipient or parsed.sender
        who = ref.id if ref is not None else parsed.senderId
        if who in (None, ""):
            raise BadInput([{"field": "recipient.id",
                             "message": "recipient.id, senderId or sender.id is required"}])
        kept = orjson.dumps({k: v for k, v in body.items() if k not in SECRET_FIELDS}).decode()
        message = parsed.message
        return Inbound(self.name, integration_id, "bot_message", fingerprint(raw), kept, True,
                       str(who), [("bot", message_text(message), message)],
                       {"source": self.name})


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
