"""Chatlayer's conversation actions API: replies and handback for Chatlayer Offloading.

An integration of kind `chatlayer-offloading` (`sources.chatlayer_offloading`) sends
every message to the end user's session, and finally the action that un-pauses the
bot, as one `POST {api_url}/v1/bots/{bot_id}/conversations/{session id}/actions` each,
with `Authorization: Bearer {api_token}` and the envelope's `Idempotency-Key`:

- a message: `{"sendMessages": [<template>, ...]}` (`api_messages`);
- the handback (a delivery whose message is `HANDBACK`): the integration's
  `handback_action`, or `DEFAULT_HANDBACK`.

Each call is one exchange as the Webhook channel makes it (`chatlayer_webhook.exchange`):
2xx delivered; timeouts, connection errors, 408, 425, 429 and 5xx retried; other
statuses and an address the outbound rules refuse failed. The answer's body is never
read.

Chatlayer documents the text template (`textMessageTemplate` with `textMessages`). The
names of the rich templates below follow that pattern and the fields of Chatlayer's
"message objects for APIs" page; they, and the handback body, are inferences to check
against one's Chatlayer workspace (docs/operations.md says how to change the handback
body per integration).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from connector.channels.base import Channel, Envelope, Outcome
from connector.channels.chatlayer_webhook import USER_AGENT, exchange
from connector.storage.models import Integration

#: A delivery's message that stands for the handback action (`handback_body`).
HANDBACK: dict[str, Any] = {"handback": True}
#: The conversation action that un-pauses the bot when none is set on the integration.
DEFAULT_HANDBACK: dict[str, Any] = {"pauseBot": False}


def is_handback(message: Any) -> bool:
    return message == HANDBACK


def handback_body(integration: Integration) -> dict[str, Any]:
    action = integration.handback_action
    return action if isinstance(action, dict) and action else DEFAULT_HANDBACK


def actions_url(integration: Integration, session_id: str) -> str:
    base = (integration.api_url or "").rstrip("/")
    return (f"{base}/v1/bots/{quote(integration.bot_id or '', safe='')}"
            f"/conversations/{quote(session_id, safe='')}/actions")


def _texts(text: str | None) -> list[dict[str, str]]:
    return [{"text": text}] if text else []


def _button(b: dict[str, Any]) -> dict[str, Any]:
    out = {"type": b["type"], "title": b["title"]}
    if b["type"] == "web_url":
        out["url"] = b["url"]
    else:
        out["payload"] = b["payload"]
    return out


def api_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A Chatlayer message object (as `domain.rich` checks it, or plain text) as the
    entries of the actions API's `sendMessages`: its attachment, then its text with its
    quick replies."""
    out: list[dict[str, Any]] = []
    attachment = message.get("attachment")
    if isinstance(attachment, dict):
        out.append(_attachment(attachment))
    quick = message.get("quick_replies")
    if quick:
        out.append({"quickReplyTemplate": {
            "textMessages": _texts(message.get("text")),
            "quickReplies": [_present(title=q.get("title"), payload=q.get("payload"),
                                      imageUrl=q.get("image_url")) for q in quick]}})
    elif not out:
        out.append({"textMessageTemplate": {"textMessages": _texts(message.get("text"))}})
    return out


def _attachment(attachment: dict[str, Any]) -> dict[str, Any]:
    payload = attachment.get("payload") or {}
    kind = attachment.get("type")
    if kind in ("image", "video"):
        return {"mediaTemplate": {"type": kind, "url": payload.get("url")}}
    if payload.get("template_type") == "generic":
        return {"carouselTemplate": {"cards": [
            _present(title=e.get("title"), subtitle=e.get("subtitle"),
                     imageUrl=e.get("image_url"), itemUrl=e.get("item_url"),
                     buttons=[_button(b) for b in e.get("buttons", [])])
            for e in payload.get("elements", [])]}}
    return {"buttonTemplate": {"textMessages": _texts(payload.get("text")),
                               "buttons": [_button(b) for b in payload.get("buttons", [])]}}


def _present(**fields: Any) -> dict[str, Any]:
    """The fields that have a value."""
    return {k: v for k, v in fields.items() if v}


class ChatlayerActions(Channel):
    """Posts envelopes to one integration's Chatlayer API, each exchange bounded by
    `timeout` seconds. The envelope's recipient is the session id."""

    def __init__(self, client: httpx.AsyncClient, timeout: float,
                 integration: Integration) -> None:
        self.client = client
        self.timeout = timeout
        self.integration = integration

    def body(self, job: Envelope) -> dict[str, Any]:
        if is_handback(job.message):
            return handback_body(self.integration)
        message = job.message if isinstance(job.message, dict) else {"text": str(job.message)}
        return {"sendMessages": api_messages(message)}

    async def deliver(self, job: Envelope) -> Outcome:
        integration = self.integration
        if not integration.api_url or not integration.api_token:
            return Outcome.failed("the integration has no Chatlayer API URL or token")
        if not integration.bot_id:
            return Outcome.failed("no Chatlayer bot is bound to the integration yet")
        headers = {"Authorization": f"Bearer {integration.api_token}",
                   "Idempotency-Key": job.idempotency_key, "User-Agent": USER_AGENT}
        request = self.client.build_request(
            "POST", actions_url(integration, job.recipient_id), json=self.body(job),
            headers=headers, timeout=self.timeout)
        return await exchange(self.client, request, self.timeout)
