"""Standard Webhooks signatures (https://www.standardwebhooks.com): the one place that
makes and checks them, for replies to a Chatlayer Webhook channel and for event webhooks.

A secret is `whsec_` + base64 of 24 random bytes; the HMAC key is those bytes.
Each request carries

- `webhook-id`: the message's id, the same on every attempt at it;
- `webhook-timestamp`: the attempt's time, in whole seconds since the epoch;
- `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`,
  one per secret, separated by spaces (two while a rotated-out secret is in its grace).

The body signed must be exactly the bytes sent: serialize once, sign those bytes,
send those bytes (`headers` takes bytes for that reason).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence

PREFIX = "whsec_"
#: A receiver refuses a timestamp further than this from its clock (the spec's advice).
TOLERANCE_SECONDS = 5 * 60


def new_secret() -> str:
    """A new signing secret, `whsec_` + base64 of 24 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def in_use(current: str | None, previous: str | None, previous_until: dt.datetime | None,
           now: dt.datetime | None = None) -> tuple[str, ...]:
    """The secrets that sign now: `current` (if set), then `previous` until
    `previous_until` (a rotation's grace period; aware datetimes)."""
    now = now or dt.datetime.now(dt.UTC)
    out = [current] if current else []
    if previous and previous_until is not None and now < previous_until:
        out.append(previous)
    return tuple(out)


def key(secret: str) -> bytes:
    """The HMAC key of `secret` (with or without its `whsec_` prefix)."""
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a whsec_ signing secret") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<signature>` of `body` sent as message `msg_id` at `timestamp`."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: Sequence[str], msg_id: str, body: bytes,
            timestamp: int | None = None) -> dict[str, str]:
    """The three headers for `body` sent as `msg_id`, signed with each of `secrets_`
    (the current one first); `timestamp` defaults to now."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": " ".join(sign(s, msg_id, ts, body) for s in secrets_)}


def verify(secret: str, headers_: Mapping[str, str], body: bytes, *,
           now: float | None = None, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: True if one of the `webhook-signature` values is `body`'s
    under `secret` and the timestamp is within `tolerance` of `now`. Header names are
    matched in lower case."""
    lower = {k.lower(): v for k, v in headers_.items()}
    msg_id, ts = lower.get("webhook-id", ""), lower.get("webhook-timestamp", "")
    if not msg_id or not ts.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(ts)) > tolerance:
        return False
    expected = sign(secret, msg_id, int(ts), body)
    return any(hmac.compare_digest(expected, given)
               for given in lower.get("webhook-signature", "").split())
