"""`connector.ingest.process`: the SQLite writer child, its death and replacement."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from connector.ingest.batcher import IngestFailed, IngestRefused
from connector.ingest.inbound import Inbound, Result
from connector.ingest.process import (
    WriterGone,
    WriterProcess,
    frame,
    shipped,
    writer_connection,
)
from connector.sources import SOURCES
from connector.storage.db import create_sync_engine
from connector.storage.models import InboundEvent
from tests import builders
from tests.helpers import rows, wait_until

pytestmark = pytest.mark.anyio
parse_smartly = SOURCES["smartly"].parse


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


@pytest.fixture
async def writer(settings) -> AsyncIterator[WriterProcess]:
    """A writer process of its own, outside any app."""
    process = WriterProcess(settings)
    await process.start()
    yield process
    await process.stop()


#: An event whose integration does not exist: the child cannot store it (no result).
ORPHAN = parse_smartly("no-such-integration", builders.turn("u-1", "hi"),
                       orjson.dumps(builders.turn("u-1", "hi")))


async def test_a_writer_dying_with_a_batch_in_flight_fails_that_batch(writer):
    """The batch's fate is unknown to the server: it answers an error, never a 2xx."""
    pid = writer.pid
    assert pid is not None
    killed(pid)
    await wait_until(lambda: gone(pid), what="the child to die")
    # It dies just after the check: the first check passes, later ones look again.
    first, check = iter([True]), writer._ready
    writer._ready = lambda: next(first, None) or check()  # type: ignore[method-assign]
    with pytest.raises(WriterGone):
        await writer.send([ORPHAN])
        await writer.receive()
    # The next batch gets a new child.
    await writer.send([ORPHAN])
    results, events = await writer.receive()
    assert results == [None] and events == []
    assert writer.pid != pid


async def test_another_writer_waits_for_at_most_the_batches_in_flight(app, bot, settings):
    """Replies and claims are not starved by a stream of ingest batches."""
    writer = app.state.ingest
    writer.batch_max = 10
    bodies = [builders.turn(f"u-{n % 50}", f"turn {n}") for n in range(600)]
    inbounds = [parse_smartly(bot.id, b, orjson.dumps(b)) for b in bodies]
    # Warm up: the child is running.
    await writer.submit(parse_smartly(bot.id, builders.turn("w", "w"),
                                      orjson.dumps(builders.turn("w", "w"))))

    def stored_now(tx) -> int:
        return tx.conn.execute(sa.select(sa.func.count()).select_from(InboundEvent)).scalar()

    flood = [asyncio.ensure_future(writer.submit(i)) for i in inbounds]
    await asyncio.sleep(0)  # all 600 are pending; the writer has taken its turn
    seen = await app.state.store.write(stored_now)
    await asyncio.gather(*flood)
    # One batch sent when the turn began and at most one more in flight: 10-30 stored.
    assert 1 <= seen - 1 <= 3 * writer.batch_max, seen


def inbounds_for(bot_id: str, n: int, tag: str) -> list[Inbound]:
    bodies = [builders.turn(f"u-{i % 17}", f"{tag} {i}") for i in range(n)]
    return [parse_smartly(bot_id, b, orjson.dumps(b)) for b in bodies]


async def own_answers(app, inbounds, answers) -> None:
    """Every answer is its own request's: the event it names is the one that was sent."""
    by_id = {e["id"]: e for e in await rows(app, InboundEvent)}
    for inbound, answer in zip(inbounds, answers, strict=True):
        assert isinstance(answer, Result), answer
        assert by_id[answer.event_id]["fingerprint"] == inbound.fingerprint


async def test_an_event_the_writer_cannot_send_never_shifts_the_answers(app, bot):
    """An event that cannot be encoded for the child (validation refuses such input; this
    is the last guard) is refused alone, with two batches in flight around it, and every
    other request, then and later, gets its own answer."""
    writer = app.state.ingest
    writer.batch_max = 5
    good = inbounds_for(bot.id, 120, "burst")
    poison = inbounds_for(bot.id, 3, "poison")
    for p in poison:
        p.raw = "\ud800 cannot be encoded"
    mixed = [*good[:7], poison[0], *good[7:60], *poison[1:], *good[60:]]
    answers = await asyncio.gather(*[writer.submit(i) for i in mixed],
                                   return_exceptions=True)
    refused = [a for i, a in zip(mixed, answers, strict=True) if i in poison]
    assert all(isinstance(a, IngestRefused) for a in refused), refused
    await own_answers(app, good, [a for i, a in zip(mixed, answers, strict=True)
                                  if i not in poison])
    later = inbounds_for(bot.id, 20, "later")
    await own_answers(app, later, [await writer.submit(i) for i in later])
    assert len(await rows(app, InboundEvent)) == 140


async def test_a_failure_with_batches_in_flight_abandons_the_writer(app, bot, monkeypatch):
    """An error between sending and reading: the child, whose answers can no longer be
    matched, is replaced; its batches are answered with an error, later ones correctly."""
    writer = app.state.ingest
    writer.batch_max = 5
    child = writer._process
    await writer.submit(inbounds_for(bot.id, 1, "warm")[0])
    old = child.pid
    real = child.receive
    calls = 0

    async def broken() -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("something broke between two reads")
        return await real()

    monkeypatch.setattr(child, "receive", broken)
    first = inbounds_for(bot.id, 12, "first")
    answers = await asyncio.gather(*[writer.submit(i) for i in first], return_exceptions=True)
    failed = [a for a in answers if isinstance(a, IngestFailed)]
    assert failed, "the batches in flight must be answered with an error"
    assert all(isinstance(a, IngestFailed | Result) for a in answers), answers
    await own_answers(app, [i for i, a in zip(first, answers, strict=True)
                            if isinstance(a, Result)],
                      [a for a in answers if isinstance(a, Result)])
    later = inbounds_for(bot.id, 30, "later")
    await own_answers(app, later, await asyncio.gather(*[writer.submit(i) for i in later]))
    assert child.pid not in (None, old)


async def test_an_answer_out_of_step_restarts_the_writer(writer):
    await writer.send([ORPHAN])
    await writer.send([ORPHAN])
    writer._awaited[0] += 1  # as if an answer had been skipped
    pid = writer.pid
    with pytest.raises(WriterGone):
        await writer.receive()
    assert writer.pid is None and dead(pid)  # killed: its answers are never read
    await writer.send([ORPHAN])
    results, _ = await writer.receive()
    assert results == [None] and writer.pid not in (None, pid)


async def test_an_event_the_child_cannot_read_is_rejected_in_its_place(app, bot, settings):
    """A request item the child cannot rebuild (protocol damage, not input: the server
    validated it) is answered `rejected`; the events around it keep their own answers."""
    good = inbounds_for(bot.id, 2, "around")
    writer = WriterProcess(settings)
    await writer.start()
    try:
        await writer.send(good[:1])  # the child is up; then one request written by hand
        first, _ = await writer.receive()
        writer._seq += 1
        writer._awaited.append(writer._seq)
        assert writer._writer is not None
        writer._writer.write(frame([writer._seq, [shipped(good[1]), ["not", "an event"]]]))
        results, _ = await writer.receive()
    finally:
        await writer.stop()
    assert [r and r.status for r in first + results] == ["processed", "processed", "rejected"]
    await own_answers(app, good, first + results[:1])


def test_the_writer_keeps_statement_journals_in_memory(settings):
    """A batch's multi-row statements need a statement journal; the writer's connection
    keeps it in memory (temp_store 2), not in a file created and unlinked per commit."""
    def temp_store(conn: sa.Connection) -> int:
        return conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "PRAGMA temp_store").fetchone()[0]

    engine, other = create_sync_engine(settings), create_sync_engine(settings)
    conn = writer_connection(engine)
    try:
        assert temp_store(conn) == 2
        with other.connect() as reader:  # the server's own connections keep the default
            assert temp_store(reader) == 0
    finally:
        conn.close()
        engine.dispose()
        other.dispose()
