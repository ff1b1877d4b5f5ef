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
