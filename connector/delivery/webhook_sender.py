"""One attempt at an event webhook: a signed POST, and what its answer means.

The body is sent exactly as stored (and signed: `outbound.signing`), with
`webhook-id`, `webhook-timestamp` (this attempt's) and `webhook-signature` (one
`v1,` signature per secret: two while a rotated-out secret is in its grace).
The exchange is bounded by the timeout whatever phase it is in; the answer's
body is never read (its status is all we use); redirects are not followed and
every connection goes through the outbound client's address check (`channels.http.exchange`).

As the Standard Webhooks specification says, a 2xx is delivered and anything
else is a failure worth retrying (3xx, 4xx, 5xx, a timeout, a connection error),
after `Retry-After` when the answer has one, but for:

* 410 Gone: the receiver wants no more; failed for good, and the subscription is
  disabled (`gone`);
* an address the outbound check refuses (`outbound.Refused`): failed for good.
"""

from __future__ import annotations

import httpx

from connector.channels.base import Outcome
from connector.channels.http import USER_AGENT, exchange, parse_retry_after
from connector.outbound import signing


def classify(status: int, headers: httpx.Headers | None) -> Outcome:
    """The outcome of an answer with `status`."""
    if 200 <= status < 300:
        return Outcome.delivered(status)
    if status == 410:
        return Outcome.failed("HTTP 410 Gone: the receiver unsubscribed", status=status)
    return Outcome.retry(f"HTTP {status}", status=status, retry_after=parse_retry_after(headers))


def gone(outcome: Outcome) -> bool:
    """Whether the answer asks us to stop sending to this URL (410)."""
    return outcome.status == 410


async def send(client: httpx.AsyncClient, url: str, secrets: list[str], webhook_id: str,
               body: str, seconds: float) -> Outcome:
    """POST `body` to `url`, signed with `secrets`, within `seconds`; never raises for
    what the far end does."""
    data = body.encode()
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               **signing.headers(secrets, webhook_id, data)}
    request = client.build_request("POST", url, content=data, headers=headers, timeout=seconds)
    return await exchange(client, request, seconds, classify)
