"""The Chatlayer Webhook channel: a reply reaches the end user as the bot's message.

One attempt is one POST to the integration's channel URL of
`{"recipient": {"id": ...}, "verifyToken": ..., "message": ...}` with the
envelope's `Idempotency-Key` header and, when the integration has a signing
secret, Standard Webhooks signature headers (`outbound.signing`: `webhook-id`
is `msg_<Idempotency-Key>`, the same on every attempt) over exactly the bytes
sent. The attempt ends after the timeout whatever phase it is in. 2xx is
delivered; a timeout, a connection error, 408, 425, 429 and 5xx are retried
(after `Retry-After` if the answer has one); any other status, and an address
the outbound rules refuse (`outbound.Refused`), fail for good. Redirects are not
followed and the answer's body is not read (the client is `outbound.client`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
from collections.abc import Sequence
from typing import Any

import httpx

from connector.channels.base import Channel, Envelope, Outcome
from connector.outbound import Refused, signing

RETRYABLE_STATUS = frozenset({408, 425, 429})
USER_AGENT = "handover-connector/0.1"


def body(job: Envelope) -> dict[str, Any]:
    """Chatlayer's bot-response shape: the channel delivers it as if the bot spoke."""
    return {"recipient": {"id": job.recipient_id}, "verifyToken": job.verify_token,
            "message": job.message}


def classify(status: int, headers: httpx.Headers | None) -> Outcome:
    """The outcome of an answer with `status`."""
    if 200 <= status < 300:
        return Outcome.delivered(status)
    reason = f"HTTP {status}"
    if status in RETRYABLE_STATUS or status >= 500:
        return Outcome.retry(reason, status=status, retry_after=parse_retry_after(headers))
    return Outcome.failed(reason, status=status)


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


def encode(job: Envelope) -> bytes:
    """The body's bytes, made once: these are signed and sent (as httpx's `json=` would)."""
    return json.dumps(body(job), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode()


class ChatlayerWebhook(Channel):
    """Posts envelopes with `client`, each exchange bounded by `timeout` seconds, signed
    with each of `signing_secrets` (the integration's in use, `signing.in_use`; none:
    unsigned)."""

    def __init__(self, client: httpx.AsyncClient, timeout: float,
                 signing_secrets: Sequence[str] = ()) -> None:
        self.client = client
        self.timeout = timeout
        self.signing_secrets = tuple(signing_secrets)

    async def deliver(self, job: Envelope) -> Outcome:
        content = encode(job)
        headers = {"Idempotency-Key": job.idempotency_key, "User-Agent": USER_AGENT,
                   "Content-Type": "application/json"}
        if self.signing_secrets:
            headers.update(signing.headers(self.signing_secrets, f"msg_{job.idempotency_key}",
                                           content))
        request = self.client.build_request("POST", job.channel_url, content=content,
                                            headers=headers, timeout=self.timeout)
        return await exchange(self.client, request, self.timeout)


async def exchange(client: httpx.AsyncClient, request: httpx.Request,
                   timeout: float) -> Outcome:  # noqa: ASYNC109 - the whole exchange's bound
    """Send `request` and classify the answer (`classify`); the whole exchange, not each
    phase, ends within `timeout` seconds (well inside the delivery's lease). The answer is
    streamed and closed unread: its body is never buffered. An address the outbound
    rules refuse fails for good; a timeout or a connection error is retried."""
    try:
        async with asyncio.timeout(timeout):
            response = await client.send(request, stream=True)
            await response.aclose()
    except Refused as exc:
        return Outcome.failed(str(exc))
    except (httpx.TimeoutException, TimeoutError) as exc:
        return Outcome.retry("timeout", transport_error=type(exc).__name__)
    except httpx.HTTPError as exc:
        name = type(exc).__name__
        return Outcome.retry(f"{name}: connection failed", transport_error=name)
    return classify(response.status_code, response.headers)
