"""Failures caused by a database that cannot be reached (`db.unreachable`), logged
without flooding: an outage is an operator's event, not a bug of ours.

`failed(log, what, exc)` logs a failure of `what`: for an unreachable database
at most one warning line every `LOG_EVERY` seconds in the whole process, no
traceback, with how many failures it stands for; for anything else the
traceback, as `log.exception` would.
"""

from __future__ import annotations

import logging
import time

from connector.storage.db import unreachable

LOG_EVERY = 10.0

_state = {"logged_at": float("-inf"), "count": 0}


def failed(log: logging.Logger, what: str, exc: BaseException) -> None:
    if not unreachable(exc):
        log.error("%s failed", what, exc_info=exc)
        return
    _state["count"] += 1
    now = time.monotonic()
    if now - _state["logged_at"] >= LOG_EVERY:
        log.warning("database unavailable (%s: %s): %s failed; %d failure(s) of this kind "
                    "since the last such line", type(exc).__name__,
                    " ".join(str(exc).split())[:200], what, int(_state["count"]))
        _state["logged_at"], _state["count"] = now, 0
