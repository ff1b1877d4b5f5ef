"""`connector.ingest.direct`: batches on held PostgreSQL connections (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from connector.ingest.direct import HeldConnections
from connector.ingest.inbound import Inbound
from connector.sources import SOURCES
from tests import builders

pytestmark = pytest.mark.anyio

WINDOW = dt.timedelta(minutes=10)


def turns(*texts: str, user: str = "u-1") -> list[Inbound]:
    out = []
    for text in texts:
        body = builders.turn(user, text)
        out.append(SOURCES["smartly"].parse("i1", body, orjson.dumps(body)))
    return out


async def stored(engine: Any) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.text(
            "SELECT text FROM message WHERE kind = 'user' ORDER BY id"))).scalars())


async def backends(engine: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"))).scalar_one()


async def test_batches_reuse_one_connection(pg_engine: Any) -> None:
    held = HeldConnections(pg_engine, WINDOW)
    try:
        for n in range(5):
            results, _ = await held.write(turns(f"turn {n}"))
            assert [r.status for r in results] == ["processed"]  # type: ignore[union-attr]
        assert await backends(pg_engine) == 1
    finally:
        await held.close()
    assert await stored(pg_engine) == [f"turn {n}" for n in range(5)]


async def test_a_connection_lost_while_idle_costs_no_event(
        pg_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The held connection's backend is killed between two batches (a restart, a proxy
    dropping it): the next batch is written on a new connection, every event answered as
    stored, and nothing is logged as an error."""
    held = HeldConnections(pg_engine, WINDOW)
    try:
        await held.write(turns("before"))
        async with pg_engine.connect() as conn:
            killed = (await conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).all()
        assert killed == [(True,)]
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            results, _ = await held.write(turns("after 1", "after 2", user="u-2"))
        assert [r and r.status for r in results] == ["processed", "processed"]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await held.close()
    assert await stored(pg_engine) == ["before", "after 1", "after 2"]


async def test_concurrent_batches_of_one_conversation_keep_its_order(pg_engine: Any) -> None:
    """Batches written at once on several connections: the conversation's rows are locked
    in turn, so its sequence numbers stay dense and every event is stored once."""
    held = HeldConnections(pg_engine, WINDOW)
    try:
        batches = [turns(*(f"b{b} t{t}" for t in range(3))) for b in range(6)]
        answers = await asyncio.gather(*(held.write(b) for b in batches))
    finally:
        await held.close()
    assert all(r is not None and r.status == "processed" for rs, _ in answers for r in rs)
    async with pg_engine.connect() as conn:
        seqs = list((await conn.execute(sa.text("SELECT seq FROM message ORDER BY seq")
                                        )).scalars())
    assert seqs == list(range(1, len(seqs) + 1))
    assert sorted(await stored(pg_engine)) == sorted(f"b{b} t{t}" for b in range(6)
                                                  for t in range(3))


async def test_combined_statements_store_what_separate_ones_did(pg_engine: Any) -> None:
    """On PostgreSQL the dedupe upsert and the inbound insert are one statement, so are the
    messages' insert and the conversations' update, and the stream counter's update and
    the events' insert (`apply._record`, `apply._transcript`, `stream.append_sync`):
    duplicates are still answered as such, inbound events keep their arrival order, each
    conversation's `last_seq` is its last message's, and the stream events' cursors are
    consecutive, stored under those ids, and the counter's last value."""
    help_body = builders.turn("u-1", "help me", need_help=True)
    helped = SOURCES["smartly"].parse("i1", help_body, orjson.dumps(help_body))
    (other,), (still,) = turns("other", user="u-2"), turns("still here")
    held = HeldConnections(pg_engine, WINDOW)
    try:
        first, events1 = await held.write([helped, other, helped])
        again, events2 = await held.write([helped, still])
    finally:
        await held.close()
    assert [r and r.status for r in first] == ["processed", "processed", "duplicate"]
    assert [r and r.status for r in again] == ["duplicate", "processed"]
    assert first[0] is not None and first[0].opened
    async with pg_engine.connect() as conn:
        inbound = list((await conn.execute(sa.text(
            "SELECT fingerprint FROM inbound_event ORDER BY id"))).scalars())
        assert inbound == [helped.fingerprint, other.fingerprint, still.fingerprint]
        seqs = (await conn.execute(sa.text(
            "SELECT c.last_seq, max(m.seq), count(*) FROM conversation c "
            "JOIN message m ON m.conversation_id = c.id GROUP BY c.id, c.last_seq"))).all()
        assert seqs and all(last == top == n for last, top, n in seqs)
        cursors = [e.cursor for e in events1 + events2]
        assert events2 and cursors == list(range(cursors[0], cursors[0] + len(cursors)))
        stored_ids = list((await conn.execute(sa.text(
            "SELECT id FROM stream_event ORDER BY id"))).scalars())
        assert stored_ids[-len(cursors):] == cursors
        counter = (await conn.execute(sa.text(
            "SELECT value FROM counter WHERE name = 'stream'"))).scalar_one()
        assert counter == cursors[-1]
