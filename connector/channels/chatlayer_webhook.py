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

import json
from collections.abc import Sequence
from typing import Any

import httpx

from connector.channels import http
from connector.channels.base import Channel, Envelope, Outcome
from connector.channels.http import USER_AGENT, parse_retry_after
from connector.outbound import signing

RETRYABLE_STATUS = frozenset({408, 425, 429})


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
    """Send `request` (`http.exchange`: bounded by `timeout`, the answer unread) and
    classify the answer as Chatlayer's endpoints mean it (`classify`)."""
    return await http.exchange(client, request, timeout, classify)
