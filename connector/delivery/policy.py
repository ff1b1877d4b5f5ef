"""The retry policy: how long a delivery worth retrying waits, and when it is given up.

Before attempt n+1 (n counted since the delivery was queued or last re-sent by
hand) the wait is `min(retry_max_delay, retry_base * 2**(n-1))`, varied by a
random ±`retry_jitter` fraction; a wait the channel asked for (`Retry-After`)
replaces it. No wait is longer than `retry_give_up_seconds`, and a delivery
whose next attempt would fall later than that after its `retry_since` is given
up instead (failed; a manual resend starts the clock again).
"""

from __future__ import annotations

import datetime as dt
import random

from connector.settings import Settings


def backoff(settings: Settings, attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt + 1`: base * 2**(attempt-1), capped, with jitter."""
    rng = rng or random
    delay = min(settings.retry_max_delay_seconds,
                settings.retry_base_seconds * 2 ** max(0, attempt - 1))
    return delay * (1 + rng.uniform(-settings.retry_jitter, settings.retry_jitter))


def next_delay(settings: Settings, attempt: int, retry_after: float | None, *,
               retry_since: dt.datetime, now: dt.datetime) -> float | None:
    """Seconds to wait after failed attempt `attempt` (counted from `retry_since`), or
    None: give up."""
    delay = retry_after if retry_after is not None else backoff(settings, attempt)
    # Honoured, but never past the give-up horizon (nor an overflowing date).
    delay = min(delay, settings.retry_give_up_seconds)
    give_up_at = retry_since + dt.timedelta(seconds=settings.retry_give_up_seconds)
    if now + dt.timedelta(seconds=delay) > give_up_at:
        return None
    return delay


def gave_up(attempts: int, error: str | None) -> str:
    """The error recorded on a delivery given up after `attempts` attempts."""
    return f"gave up after {attempts} attempts: {error}"
