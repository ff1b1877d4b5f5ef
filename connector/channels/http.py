"""One HTTP exchange out, as every sender makes it: bounded, its answer unread, classified.

The whole exchange, not each phase, ends within its timeout (well inside a delivery's
lease). The answer is streamed and closed unread: its body is never buffered, only its
status and headers are used, by the caller's `classify`. An address the outbound rules
refuse (`outbound.Refused`) fails for good; a timeout or a connection error is retried.
Used by the Chatlayer channels and the event webhooks' sender.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
from collections.abc import Callable

import httpx

from connector.channels.base import Outcome
from connector.outbound import Refused

USER_AGENT = "handover-connector/0.1"

#: What an answer's status and headers mean to one kind of receiver.
Classify = Callable[[int, "httpx.Headers | None"], Outcome]


def parse_retry_after(headers: httpx.Headers | None) -> float | None:
    """`Retry-After` in seconds (delay-seconds or an HTTP date), or None if absent or bad."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


async def exchange(client: httpx.AsyncClient, request: httpx.Request,
                   timeout: float,  # noqa: ASYNC109 - the whole exchange's bound
                   classify: Classify) -> Outcome:
    """Send `request` within `timeout` seconds and `classify` the answer; never raises for
    what the far end does."""
    try:
        async with asyncio.timeout(timeout):
            response = await client.send(request, stream=True)
            await response.aclose()  # the body is never read
    except Refused as exc:
        return Outcome.failed(str(exc))
    except (httpx.TimeoutException, TimeoutError) as exc:
        return Outcome.retry("timeout", transport_error=type(exc).__name__)
    except httpx.HTTPError as exc:
        name = type(exc).__name__
        return Outcome.retry(f"{name}: connection failed", transport_error=name)
    return classify(response.status_code, response.headers)
