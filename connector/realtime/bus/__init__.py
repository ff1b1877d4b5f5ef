"""The event bus: fans stored stream events out to every process's live consoles.

A tiny base class (`base.EventBus`) and implementations chosen by the URL's
scheme (`CONNECTOR_BUS_URL`): `memory://` (one process, no broker) and
`redis://` / `rediss://` (instances sharing one Redis).
"""

from __future__ import annotations

from connector.realtime.bus.base import EventBus
from connector.realtime.bus.memory import MemoryBus
from connector.realtime.bus.redis import RedisBus

__all__ = ["BUSES", "EventBus", "MemoryBus", "RedisBus", "create_bus"]

#: The implementations by URL scheme.
BUSES: dict[str, type[EventBus]] = {"memory": MemoryBus, "redis": RedisBus,
                                    "rediss": RedisBus}


def create_bus(url: str) -> EventBus:
    scheme = url.split("://", 1)[0]
    factory = BUSES.get(scheme)
    if factory is None:
        raise ValueError(f"unsupported event bus URL scheme {scheme!r}")
    return factory(url)  # type: ignore[call-arg]
