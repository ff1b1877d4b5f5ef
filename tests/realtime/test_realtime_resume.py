"""The live stream across reconnects: resuming from a cursor gets exactly the missed
events, even while events are published; a cursor older than what is kept, or ahead,
gets a resync. Scaffolding: tests/realtime_helpers.py."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from connector.storage.models import StreamEvent
from tests.realtime_helpers import CONTROL, Stream, on_server, strictly_increasing

pytestmark = pytest.mark.anyio


async def test_reconnecting_with_the_cursor_gets_exactly_the_missed_events(world):
    alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
    mine = await world.claimed(alice, "u-1")
    s1 = await world.open(alice)
    await world.turn("u-1", "first")
    await world.turn("u-1", "second")
    await s1.until(lambda f: f["type"] == "message.created" and f["message"]["text"] == "second")
    last = s1.events()[-1]["cursor"]
    await s1.drop()

    # While alice is away: the end user writes, colleagues act, a new ticket arrives,
    # and things happen that she may not see.
    for text in ("are you there?", "hello??", "ok I wait"):
        await world.turn("u-1", text)
    r = await sam.http.post(f"/api/tickets/{mine}/notes", json={"text": "careful, VIP"})
    assert r.status_code == 201
    t3 = await world.escalate("u-3")
    r = await sam.http.post(f"/api/tickets/{t3}/transfer", json={"to": "alice"})
    assert r.status_code == 200
    hidden = await world.claimed(bob, "u-4")
    await world.turn("u-4", "not for alice")
    r = await alice.http.post(f"/api/tickets/{mine}/messages", json={"text": "back now"})
    assert r.status_code == 201
    await anyio.to_thread.run_sync(world.channel.wait_delivered, 1)
    with anyio.fail_after(10):  # until the delivery outcome is stored too
        while True:
            if any(e.type == "delivery.updated" for e in await world.stored(last)):
                break
            await anyio.sleep(0.05)
    snapshot = await world.last_cursor()

    s2 = await world.open(alice, after=last)
    assert s2.hello["cursor"] == last
    expected = await world.visible(alice, last, snapshot)
    await s2.reach(expected[-1]["cursor"])
    got = await world.assert_exactly(alice, s2.events(), last, snapshot)
    assert len(got) >= 10
    assert s2.messages[1][:len(got)] == got  # the replay is one array message
    assert strictly_increasing(s2.events())
    texts = [f["message"]["text"] for f in got if f["type"] == "message.created"]
    for text in ("are you there?", "hello??", "ok I wait", "careful, VIP", "back now"):
        assert text in texts
    assert "not for alice" not in json.dumps(got)
    assert any(f["type"] == "ticket.updated" and f["ticket"]["id"] == t3 for f in got)
    assert any(f["type"] == "delivery.updated" for f in got)
    # The stream did hold events she may not see in that range: the filter was exercised.
    all_stored = [e for e in await world.stored(last) if e.cursor <= snapshot]
    assert any(e.ticket_id == hidden and not e.visible_to(alice.user_id, alice.role)
               for e in all_stored)


async def test_resume_is_exact_while_events_are_published_during_reconnects(world):
    alice, bob = [await world.person(n) for n in ("alice", "bob")]
    mine = await world.claimed(alice, "u-1")
    theirs = await world.claimed(bob, "u-2")
    assert mine != theirs
    publishing = True

    async def publish() -> None:
        nonlocal publishing
        try:
            for n in range(40):
                await world.turn("u-1", f"mine {n}")
                await world.turn("u-2", f"theirs {n}")  # not visible to alice
                if n % 10 == 0:
                    await world.escalate(f"u-new-{n}")
                    r = await alice.http.post(f"/api/tickets/{mine}/notes",
                                              json={"text": f"note {n}"})
                    assert r.status_code == 201
        finally:
            publishing = False

    first = await world.open(alice)
    start = first.hello["cursor"]
    received: list[dict[str, Any]] = []
    reconnects_while_publishing = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(publish)
        s = first
        while publishing:
            # Read a few events, drop the connection, resume from the last one read.
            for _ in range(1 + reconnects_while_publishing % 4):
                try:
                    await s.until(lambda f: f["type"] not in CONTROL, within=2)
                except TimeoutError:
                    break
            received += s.events()
            after = received[-1]["cursor"] if received else start
            await s.drop()
            if publishing:
                reconnects_while_publishing += 1
            s = await world.open(alice, after=after)
            assert s.hello["cursor"] == after
    snapshot = await world.last_cursor()
    expected = await world.visible(alice, start, snapshot)
    await s.reach(expected[-1]["cursor"])
    received += s.events()
    assert reconnects_while_publishing >= 3
    assert strictly_increasing(received)  # no duplicate across reconnects
    got = await world.assert_exactly(alice, received, start, snapshot)  # no gap
    texts = [f["message"]["text"] for f in got if f["type"] == "message.created"]
    assert [t for t in texts if t.startswith("mine ")] == [f"mine {n}" for n in range(40)]
    assert not any(t.startswith("theirs ") for t in texts)


async def test_resync_when_the_cursor_is_older_than_what_is_kept_or_ahead(world):
    sam = await world.person("sam")
    # sam stays online throughout, so the probes below add no presence events.
    keeper = await world.open(sam)
    for n in range(4):
        await world.escalate(f"u-{n}")
    last = await world.last_cursor()
    cut = last - 3
    assert cut > 2

    async def prune() -> None:  # what housekeeping does past the retention
        async with world.live.app.state.store.transaction() as tx:
            await tx.conn.execute(sa.delete(StreamEvent.__table__).where(
                StreamEvent.__table__.c.id <= cut))

    await on_server(world.live, prune())
    seen: list[int] = []

    for ahead in (None, None, 1, 1000):
        after = {0: 1, 1: cut - 1}[len(seen)] if ahead is None else (
            await world.last_cursor() + ahead)
        seen.append(after)
        s = Stream(await world.connect(sam, after=after))
        resync = await s.next()
        assert resync["type"] == "resync", after
        hello = await s.next()
        assert hello["type"] == "hello"
        now = await world.last_cursor()
        assert resync["cursor"] == hello["cursor"] and hello["cursor"] <= now
        await s.ws.close()

    # Exactly at the edge of what is kept: a normal resume, everything kept is replayed.
    s = Stream(await world.connect(sam, after=cut))
    assert (await s.next())["type"] == "hello"
    await s.reach(last)
    assert [f["cursor"] for f in s.events() if f["cursor"] <= last] == list(
        range(cut + 1, last + 1))
    s = Stream(await world.connect(sam, after=last))  # up to date: no resync
    assert (await s.next())["type"] == "hello"

    ws = await world.connect(sam, after="abc")
    assert await Stream(ws).close_code() == 4400
    await keeper.reach(last)  # unaffected by all of this
