"""Event bus: fans stored stream events out to every process's live clients.

A tiny base class and implementations chosen by URL scheme (`memory://`,
`redis://`). The bus only carries notifications; the database stays the source
of truth, so a subscriber that notices a gap in cursors re-reads the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from connector.realtime.stream import Event


class EventBus:
    async def connect(self) -> None:  # pragma: no cover - trivial default
        pass

    async def disconnect(self) -> None:  # pragma: no cover - trivial default
        pass

    async def publish(self, events: list[Event]) -> None:
        raise NotImplementedError

    def subscribe(self) -> AsyncIterator[list[Event]]:
        raise NotImplementedError


class MemoryBus(EventBus):
    """In-process fan-out: one process, no broker."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[list[Event] | None]] = set()

    async def disconnect(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait(None)

    async def publish(self, events: list[Event]) -> None:
        for queue in self._subscribers:
            queue.put_nowait(events)

    async def subscribe(self) -> AsyncIterator[list[Event]]:  # type: ignore[override]
        queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while (batch := await queue.get()) is not None:
                yield batch
        finally:
            self._subscribers.discard(queue)


def create_bus(url: str, **options: Any) -> EventBus:
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        return MemoryBus()
    raise ValueError(f"unsupported event bus URL scheme {scheme!r}")
