"""`connector.ingest_process`: the SQLite writer child, its death and replacement."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from connector import ingest
from connector.ingest_process import WriterGone, WriterProcess
from connector.models import InboundEvent
from tests import builders
from tests.helpers import rows, wait_until

pytestmark = pytest.mark.anyio


def killed(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.split(") ", 1)[1].startswith("Z")  # a zombie until its parent reaps it


async def gone(pid: int) -> bool:
    return dead(pid)


async def test_events_are_written_by_a_child_process(app, client, bot):
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "hello"))
    assert r.status_code == 200
    writer = app.state.ingest._process
    assert writer.pid is not None and writer.pid != os.getpid()
    (event,) = await rows(app, InboundEvent)
    assert event["id"] == r.json()["event_id"]


async def test_a_killed_writer_is_replaced_and_nothing_acknowledged_is_lost(app, client, bot):
    first = await client.post(bot.smartly_path, json=builders.turn("u-1", "before"))
    assert first.status_code == 200
    old = app.state.ingest._process.pid
    killed(old)
    await wait_until(lambda: gone(old), what="the child to die")
    answers = await asyncio.gather(*[
        client.post(bot.smartly_path, json=builders.turn(f"u-{n}", f"after {n}"))
        for n in range(10)])
    assert [a.status_code for a in answers] == [200] * 10
    assert app.state.ingest._process.pid not in (None, old)
    stored = {e["id"] for e in await rows(app, InboundEvent)}
    assert stored == {first.json()["event_id"]} | {a.json()["event_id"] for a in answers}


async def test_a_writer_dying_with_a_batch_in_flight_fails_that_batch(settings):
    """The batch's fate is unknown to the server: it answers an error, never a 2xx."""
    writer = WriterProcess(settings)
    await writer.start()
    try:
        raw = builders.turn("u-1", "hi")
        body = ingest.parse_smartly("no-such-integration", raw, orjson.dumps(raw))
        pid = writer.pid
        assert pid is not None
        killed(pid)
        await wait_until(lambda: gone(pid), what="the child to die")
        writer._proc.is_alive = lambda: True  # type: ignore[union-attr]  # it died just after
        with pytest.raises(WriterGone):
            await writer.send([body])
            await writer.receive()
        # The next batch gets a new child (which refuses the unknown integration: no result).
        await writer.send([body])
        results, events = await writer.receive()
        assert results == [None] and events == []
        assert writer.pid != pid
    finally:
        await writer.stop()


async def test_another_writer_waits_for_at_most_the_batches_in_flight(app, bot, settings):
    """Replies and claims are not starved by a stream of ingest batches."""
    writer = app.state.ingest
    writer.batch_max = 10
    bodies = [builders.turn(f"u-{n % 50}", f"turn {n}") for n in range(600)]
    inbounds = [ingest.parse_smartly(bot.id, b, orjson.dumps(b)) for b in bodies]
    # Warm up: the child is running.
    await writer.submit(ingest.parse_smartly(bot.id, builders.turn("w", "w"),
                                             orjson.dumps(builders.turn("w", "w"))))

    def stored_now(tx) -> int:
        return tx.conn.execute(sa.select(sa.func.count()).select_from(InboundEvent)).scalar()

    flood = [asyncio.ensure_future(writer.submit(i)) for i in inbounds]
    await asyncio.sleep(0)  # all 600 are pending; the writer has taken its turn
    seen = await app.state.store.write(stored_now)
    await asyncio.gather(*flood)
    # One batch sent when the turn began and at most one more in flight: 10-30 stored.
    assert 1 <= seen - 1 <= 3 * writer.batch_max, seen
