"""The hub forwards stored events in cursor order with no gap, whatever the batches the
bus brings: a gap before a batch, or inside one (a publish that carries several
transactions while one in between is published later), is read from the database."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from connector.realtime import hub as hub_module
from connector.realtime import stream
from connector.realtime.hub import Client
from connector.realtime.stream import Event

pytestmark = pytest.mark.anyio


def supervisor() -> Client:
    principal = SimpleNamespace(user_id=1, role="supervisor", username="sup", session_id="s")
    return Client(principal=principal, queue_max=1000)  # type: ignore[arg-type]


async def stored_events(app: Any, count: int) -> list[Event]:
    """`count` events stored (not published), as the stream table gives them back."""
    store = app.state.store
    async with store.begin() as conn:
        await stream.append(conn, [Event("x.test", {"n": n}, public=True) for n in range(count)])
    async with store.read() as conn:
        return await stream.read_after(conn, 0)


async def received(hub: Any, c: Client) -> list[int]:
    """What `c` was offered, once the hub holds nothing back (offers are paced)."""
    for _ in range(400):
        if hub._held is None:
            break
        await asyncio.sleep(hub_module.OFFER_PERIOD_SECONDS / 4)
    return [e.cursor for chunk in c.pending for e in chunk]


@pytest.mark.parametrize("published", [[1, 2, 6], [3, 6], [1, 4, 2, 6, 6], [6]])
async def test_a_gap_before_or_inside_a_batch_is_read_from_the_database(
        app: Any, published: list[int]) -> None:
    hub = app.state.hub
    events = await stored_events(app, 6)
    start = hub.delivered_upto
    assert [e.cursor for e in events][-6:] == list(range(start + 1, start + 7))
    console = supervisor()
    hub.clients.add(console)
    try:
        await hub._forward([events[-7 + n] for n in published])
        assert await received(hub, console) == list(range(start + 1, start + 7))
        assert hub.delivered_upto == start + 6
        await hub._forward([events[-1], events[-3]])  # already forwarded: nothing more
        assert await received(hub, console) == list(range(start + 1, start + 7))
    finally:
        hub.clients.discard(console)
