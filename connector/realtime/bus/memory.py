"""`memory://`: the event bus of one process, no broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from connector.realtime.bus.base import EventBus

if TYPE_CHECKING:
    from connector.realtime.stream import Event


class MemoryBus(EventBus):
    """In-process fan-out: each subscriber has a queue of its own; `disconnect` ends
    every subscription."""

    status = "memory"

    def __init__(self, url: str = "memory://") -> None:
        self._subscribers: set[asyncio.Queue[list[Event] | None]] = set()

    async def disconnect(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait(None)

    async def publish(self, events: list[Event]) -> None:
        self.fan_out(events)

    def fan_out(self, events: list[Event]) -> None:
        """Hand `events` to this process's subscribers."""
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
