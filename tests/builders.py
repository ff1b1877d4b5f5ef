"""Plain builder functions for webhook bodies.

`turn`, the Smartly `message_received` body, is the benchmarks' too: its one
home is bench/lib/smartly.py.
"""

from __future__ import annotations

from typing import Any

from bench.lib.smartly import turn

__all__ = ["chatlayer", "escalation", "turn"]


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


class EndlessBody:
    """A chunked request body of 64 MiB if anyone read it all; `sent` counts what was."""

    def __init__(self, fill: bytes = b" ", chunk: int = 65536) -> None:
        self.chunk = fill * chunk
        self.sent = 0

    async def __aiter__(self) -> Any:
        for _ in range(1024):
            self.sent += len(self.chunk)
            yield self.chunk
