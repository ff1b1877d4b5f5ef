"""Logging: one line per request and per delivery attempt, text or JSON.

No secret reaches a log line: the request line carries the path without its
query string (where the Smartly key lives), and a filter on every handler
masks anything that looks like a key, token or password as a last line of
defence.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.settings import Settings

_SECRETS = re.compile(
    r"(?i)((?:key|token|verifytoken|password|secret|session|csrf[_-]?token)"
    r"[\"']?\s*[=:]\s*)(\"[^\"\n]*\"?|'[^'\n]*'?|[^\s&\"',;}]+)")

access = logging.getLogger("connector.access")


def redact(text: str) -> str:
    return _SECRETS.sub(r"\1[redacted]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class RedactingFormatter(logging.Formatter):
    """Text lines; tracebacks are masked too (an exception message may carry a secret)."""

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JSONFormatter() if settings.log_json else RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                access.info("%s %s %s %d %.1fms", client[0], scope["method"], scope["path"],
                            status, (time.perf_counter() - started) * 1000)
