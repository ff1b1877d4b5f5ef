"""The event bus interface: stored stream events fanned out to every process's hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.realtime.stream import Event


class EventBus:
    """Carries notifications only: the stream table stays the source of truth, so a
    subscriber that notices a gap in cursors re-reads it (`realtime.hub`).

    `publish` hands a committed batch, in cursor order, to every subscriber of every
    process; `subscribe` yields the batches published after it was called. Neither
    raises for a broker that is down: `status` says so (`"ok"`, `"down"`, or
    `"memory"` for a bus of one process), and the hub then polls the stored stream.
    An implementation is built from its URL (`__init__(url)`); `check_url` refuses a
    bad one with a message of one line before anything starts.
    """

    status = "ok"

    @classmethod
    def check_url(cls, url: str) -> None:
        """Raise `ValueError` naming what is wrong with `url`."""

    async def connect(self) -> None:  # pragma: no cover - trivial default
        pass

    async def disconnect(self) -> None:  # pragma: no cover - trivial default
        pass

    async def publish(self, events: list[Event]) -> None:
        raise NotImplementedError

    def subscribe(self) -> AsyncIterator[list[Event]]:
        raise NotImplementedError
