"""The channel interface: how a reply leaves for the platform the end user is on.

A `Channel` is given one `Envelope` and answers an `Outcome`, in the manner
of an httpx transport: whatever the far end does (answers, times out, refuses
the connection) is an outcome, never an exception. An exception out of
`deliver` is a bug, for the caller to log; the delivery's lease then runs out
and it is tried again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

#: The delivery state an attempt leads to.
State = Literal["delivered", "retrying", "failed"]


def idempotency_key() -> str:
    """A new key: one per message, sent with every attempt at it."""
    return uuid.uuid4().hex


@dataclass(slots=True, frozen=True)
class Envelope:
    """One message for one recipient, and the channel endpoint that takes it.

    `idempotency_key` is the same on every attempt at one message, so the
    channel can recognise a message it already has.
    """

    channel_url: str
    verify_token: str
    recipient_id: str
    message: Any
    idempotency_key: str


@dataclass(slots=True, frozen=True)
class Outcome:
    """What came of one attempt, as the delivery records it.

    `delivered`; `retrying`, worth another attempt (`error` says why,
    `retry_after` is the wait in seconds the far end asked for, if it did);
    `failed` for good. `status` is the answer's HTTP status, if one came;
    when none came, `transport_error` is the class name of what went wrong.
    """

    state: State
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    transport_error: str | None = None

    @classmethod
    def delivered(cls, status: int) -> Outcome:
        return cls("delivered", status)

    @classmethod
    def retry(cls, error: str, *, status: int | None = None, retry_after: float | None = None,
              transport_error: str | None = None) -> Outcome:
        return cls("retrying", status, error, retry_after, transport_error)

    @classmethod
    def failed(cls, error: str, *, status: int | None = None) -> Outcome:
        return cls("failed", status, error)


class Channel:
    """Sends envelopes to one kind of channel; subclasses implement `deliver`."""

    async def deliver(self, job: Envelope) -> Outcome:
        """Make one attempt at `job`; never raises for what the far end did."""
        raise NotImplementedError()
