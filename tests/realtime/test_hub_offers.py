"""The hub offers live events to consoles at most once per `OFFER_PERIOD_SECONDS`:
events that arrive sooner are held and offered together, in cursor order, to every
console registered by then. Nothing is lost or reordered by the holding."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from connector.realtime import hub as hub_module
from connector.realtime.hub import Batch, Client, Hub
from connector.realtime.stream import Event
from connector.settings import Settings

pytestmark = pytest.mark.anyio


def event(cursor: int) -> Event:
    return Event.rendered(f'{{"type":"x","cursor":{cursor}}}', "x", None, True, [], cursor)


def client() -> Client:
    principal = SimpleNamespace(user_id=1, role="supervisor", username="sup", session_id="s")
    return Client(principal=principal, queue_max=1000)  # type: ignore[arg-type]


def a_hub(tmp_path) -> Hub:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    return Hub(store=None, bus=None, settings=settings,  # type: ignore[arg-type]
               presence=SimpleNamespace())  # type: ignore[arg-type]


def cursors(c: Client) -> list[int]:
    return [e.cursor for chunk in c.pending for e in chunk]


async def test_a_first_event_is_offered_at_once_and_later_ones_together_in_order(tmp_path):
    hub = a_hub(tmp_path)
    first = client()
    hub.clients.add(first)
    hub._offer(Batch([event(1)]))
    assert cursors(first) == [1]  # after a quiet moment: no wait

    hub._offer(Batch([event(2)]))
    hub._offer(Batch([event(3), event(4)]))
    assert cursors(first) == [1]  # within the period: held
    late = client()  # registers while events are held: it gets them too
    hub.clients.add(late)

    for _ in range(200):
        if cursors(first) == [1, 2, 3, 4]:
            break
        await asyncio.sleep(hub_module.OFFER_PERIOD_SECONDS / 4)
    assert cursors(first) == [1, 2, 3, 4]
    assert len(first.pending) == 2  # the held events came as one offer
    assert cursors(late) == [2, 3, 4]
    assert first.wake.is_set() and late.wake.is_set()
    assert hub._held is None


async def test_holding_keeps_every_event_under_a_burst(tmp_path):
    hub = a_hub(tmp_path)
    c = client()
    hub.clients.add(c)
    for n in range(1, 301):
        hub._offer(Batch([event(n)]))
        if n % 50 == 0:
            await asyncio.sleep(0)
    for _ in range(200):
        if hub._held is None and cursors(c)[-1:] == [300]:
            break
        await asyncio.sleep(hub_module.OFFER_PERIOD_SECONDS / 4)
    assert cursors(c) == list(range(1, 301))
    assert len(c.pending) < 300  # offered in fewer, larger chunks
