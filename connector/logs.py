"""Logging: one line per request and per delivery attempt, text or JSON.

No secret reaches a log line: the request line carries the path without its
query string (where the Smartly key lives), and a filter on every handler
masks anything that looks like a key, token or password as a last line of
defence.

No request can forge a log line: the same filter escapes every control
character of a message (CR and LF included, as `\\n`, `\\r`, `\\xNN`), and
in text logs every further line of a traceback starts with `  | `, so each
record starts exactly one line that starts with its timestamp. JSON logs are
one JSON object per line by construction.

Every line logged while a request is handled ends with its request id
(`request_id=...`; a `request_id` field in JSON), which the response carries as
`X-Request-Id`: the proxy's own id when it sent a sane one (1 to 64 of
`A-Z a-z 0-9 . _ -`, so nothing to escape), else a new one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import sys
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.settings import Settings
from connector.web.http import header
from connector.web.proxies import Network, client_address

_SECRETS = re.compile(
    r"(?i)((?:key|token|verifytoken|password|secret|session|csrf[_-]?token)"
    r"[\"']?\s*[=:]\s*)(\"[^\"\n]*\"?|'[^'\n]*'?|[^\s&\"',;}]+)")

access = logging.getLogger("connector.access")

#: The request being handled in this context (None outside requests).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


#: New request ids: 64 random bits each. An id correlates log lines and is no secret (a
#: client may choose its own), so it is drawn from a generator seeded once per process
#: from the OS, without a system call per request.
_new_ids = random.Random(secrets.randbits(128))
os.register_at_fork(after_in_child=lambda: _new_ids.seed(secrets.randbits(128)))


def accept_request_id(value: bytes | None) -> str:
    """The incoming id when it is sane (`_REQUEST_ID`), else a new random one."""
    if value is not None:
        text = value.decode("latin-1")
        if _REQUEST_ID.fullmatch(text):
            return text
    return f"{_new_ids.getrandbits(64):016x}"


#: C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def redact(text: str) -> str:
    return _SECRETS.sub(r"\1[redacted]", text)


def escape(text: str) -> str:
    """`text` on one line: every control character written as an escape."""
    return _CONTROLS.sub(lambda m: _NAMED.get(m[0]) or f"\\x{ord(m[0]):02x}"
                         if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class RedactingFilter(logging.Filter):
    """Masks secrets and escapes control characters in every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = escape(redact(message))
        if clean != message:
            record.msg, record.args = clean, None
        return True


class RequestIdFilter(logging.Filter):
    """Gives every record `request_id` (None outside requests) and `request_tag`, the
    text line's ending: ` request_id=...` or nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        record.request_id = rid
        record.request_tag = f" request_id={rid}" if rid else ""
        return True


class RedactingFormatter(logging.Formatter):
    """Text lines; tracebacks are masked too (an exception message may carry a secret),
    and each of their lines is marked as part of the record above it."""

    def formatException(self, ei: Any) -> str:
        return _continued(redact(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:
        return _continued(super().formatStack(stack_info))


def _continued(text: str) -> str:
    return "\n".join("  | " + escape(line) for line in text.splitlines())


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JSONFormatter() if settings.log_json else RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request's full URL (a channel URL may carry credentials);
    # aiosqlite logs SQL with its parameters at debug level.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    # Uvicorn's access log prints the query string (the webhook key): ours does not.
    logging.getLogger("uvicorn.access").disabled = True


class AccessLogMiddleware:
    """One line per request, with the same client address the sign-in throttle uses;
    the request's id set for every line logged while it is handled, and answered as
    `X-Request-Id`."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[Network] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        rid = accept_request_id(header(scope, REQUEST_ID_HEADER))
        token = request_id.set(rid)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (REQUEST_ID_HEADER, rid.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access.isEnabledFor(logging.INFO):
                access.info("%s %s %s %d %.1fms", client_address(scope, self.trusted_proxies),
                            scope["method"], scope["path"], status,
                            (time.perf_counter() - started) * 1000)
            request_id.reset(token)

