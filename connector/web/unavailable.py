"""The answer when the database cannot be reached (`storage.db.unreachable`).

Every HTTP request is answered 503 `unavailable` with `Retry-After`, so a bot
platform sends its webhook again and a console retries; a live-stream socket
is closed with 1013 (try again later). Logged by `storage.outage`: no
traceback, at most one warning line every few seconds.
"""

from __future__ import annotations

import logging

from starlette.requests import HTTPConnection
from starlette.responses import Response

from connector.storage import outage
from connector.storage.db import unreachable
from connector.web.http import error_response

log = logging.getLogger("connector")

RETRY_AFTER_SECONDS = 5
CLOSE_TRY_AGAIN_LATER = 1013
MESSAGE = "the database is unavailable; retry later"


def note(exc: BaseException, what: str = "a request (answered 503)") -> None:
    outage.failed(log, what, exc)


def response(exc: BaseException) -> Response:
    """The 503 for a request refused because of `exc` (and logged)."""
    note(exc)
    answer = error_response(503, "unavailable", MESSAGE)
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


async def handler(conn: HTTPConnection, exc: Exception) -> Response | None:
    """For Starlette's `exception_handlers`: 503 (HTTP) or close 1013 (WebSocket) for a
    database that cannot be reached; any other error goes on to the 500 handler."""
    if not unreachable(exc):
        raise exc
    if conn.scope["type"] == "websocket":
        note(exc, "a live-stream connection (closed 1013)")
        await conn.send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER,
                         "reason": "database unavailable"})
        return None
    return response(exc)
