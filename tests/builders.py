"""Plain builder functions for webhook bodies.

`turn`, the Smartly `message_received` body, is the benchmarks' too: its one
home is bench/lib/smartly.py.
"""

from __future__ import annotations

from typing import Any

from bench.lib.smartly import turn

__all__ = ["chatlayer", "escalation", "offload", "offloading_messages", "turn", "user_says"]


def escalation(client: str = "user-1", *, lang: str = "fr-fr", plateform: str = "webchat",
               **extra: Any) -> dict[str, Any]:
    return {"event": "escalation_requested",
            "payload": {"skill_id": "123", "lang": lang, "plateform": plateform,
                        "client_id": client, **extra}}


def chatlayer(user: str, token: str, message: dict[str, Any] | None = None,
              id_field: str = "recipient") -> dict[str, Any]:
    body: dict[str, Any] = {"verifyToken": token, "message": message or {"text": "bot says"}}
    if id_field == "recipient":
        body["recipient"] = {"id": user}
    elif id_field == "sender":
        body["sender"] = {"id": user}
    else:
        body["senderId"] = user
    return body


def user_says(text: str, **extra: Any) -> dict[str, Any]:
    """One item of a Chatlayer Offloading `messages` list or `transcript`: the user."""
    return {"actor": "user", "message": {"messageType": "text", "text": text, **extra},
            "timestamp": "2026-11-29T10:00:00.000Z"}


def bot_says(message: dict[str, Any] | str) -> dict[str, Any]:
    body = {"text": message} if isinstance(message, str) else message
    return {"actor": "bot", "message": body, "timestamp": "2026-11-29T10:00:01.000Z"}


def offloading_messages(session: str, items: list[dict[str, Any]], *, bot: str = "bot-1",
                        channel: str = "web") -> dict[str, Any]:
    """Chatlayer's Offloading `messages` event: a session's new messages."""
    return {"event": "messages", "botId": bot, "version": "LIVE", "sessionId": session,
            "channel": channel, "timestamp": "2026-11-29T10:00:02.000Z", "messages": items}


def offload(session: str, transcript: list[dict[str, Any]] | None = None, *,
            payload: dict[str, Any] | None = None, bot: str = "bot-1",
            channel: str = "web", **extra: Any) -> dict[str, Any]:
    """Chatlayer's Offloading `offload` event: the bot hands the session to the desk."""
    return {"event": "offload", "botId": bot, "version": "LIVE", "sessionId": session,
            "channel": channel, "timestamp": "2026-11-29T10:00:03.000Z",
            "transcript": transcript or [], "payload": payload or {}, **extra}


class EndlessBody:
    """A chunked request body of 64 MiB if anyone read it all; `sent` counts what was."""

    def __init__(self, fill: bytes = b" ", chunk: int = 65536) -> None:
        self.chunk = fill * chunk
        self.sent = 0

    async def __aiter__(self) -> Any:
        for _ in range(1024):
            self.sent += len(self.chunk)
            yield self.chunk
