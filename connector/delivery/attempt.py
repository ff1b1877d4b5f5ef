"""One attempt through a channel: timed, and told in one `connector.delivery` log line."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from connector.channels import Channel, Envelope, Outcome
from connector.metrics import Metrics

log = logging.getLogger("connector.delivery")


async def deliver_timed(channel: Channel, job: Envelope) -> tuple[Outcome, float]:
    """Send `job` once: its outcome, and how long that took in milliseconds."""
    started = time.perf_counter()
    outcome = await channel.deliver(job)
    return outcome, (time.perf_counter() - started) * 1000


def log_attempt(delivery: int | str, message: int | str, number: int, state: str,
                status: int | None, error: str | None, duration_ms: float,
                delay: float | None, url: str, *, metrics: Metrics | None = None,
                kind: str = "reply") -> None:
    """The log line of one attempt: what came of it, and when the next one is due; counted
    in `metrics` (as a `kind` of delivery) when given."""
    if metrics is not None:
        metrics.delivery(kind, state, duration_ms / 1000)
    log.info(
        "delivery=%s message=%s attempt=%s outcome=%s status=%s error=%s duration_ms=%.1f"
        " next_in=%s target=%s", delivery, message, number, state, status, error, duration_ms,
        f"{delay:.1f}s" if delay is not None else "-", redact_url(url))


async def send_once(channel: Channel, job: Envelope) -> tuple[Outcome, float]:
    """One attempt outside the outbox (the admin's test message): nothing is stored and
    nothing retried; its log line reads `delivery=test message=-`."""
    outcome, duration_ms = await deliver_timed(channel, job)
    log_attempt("test", "-", 1, outcome.state, outcome.status, outcome.error, duration_ms,
                None, job.channel_url)
    return outcome, duration_ms


def redact_url(url: str) -> str:
    """`url` as logged: scheme, host, port and path (no credentials, query or fragment)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}" \
           f"{parts.path}"
