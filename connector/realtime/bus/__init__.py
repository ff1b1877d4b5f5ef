"""The event bus: fans stored stream events out to every process's live consoles.

A tiny base class (`base.EventBus`) and implementations chosen by the URL's
scheme (`CONNECTOR_BUS_URL`). Only `memory://` exists: one process, no broker.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.realtime.bus.base import EventBus
from connector.realtime.bus.memory import MemoryBus

__all__ = ["BUSES", "EventBus", "MemoryBus", "create_bus"]

#: The implementations by URL scheme.
BUSES: dict[str, Callable[[], EventBus]] = {"memory": MemoryBus}


def create_bus(url: str) -> EventBus:
    scheme = url.split("://", 1)[0]
    factory = BUSES.get(scheme)
    if factory is None:
        raise ValueError(f"unsupported event bus URL scheme {scheme!r}")
    return factory()
