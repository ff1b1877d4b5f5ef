"""The engine on a real PostgreSQL (127.0.0.1:5432, trust auth), not only SQLite.

Each test gets a fresh database. On PostgreSQL the ingest batch runs through
`run_sync` over asyncpg, and concurrent writers really race, so the same
guarantees are checked again here.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import orjson
import pytest
import sqlalchemy as sa

from connector.domain import errors, tickets
from connector.ingest.process import WriterProcess
from connector.settings import Settings
from connector.storage.models import InboundEvent, Message, Ticket
from tests import builders
from tests.conftest import PASSWORD, add_bot, add_user
from tests.fakes import FakeChannel
from tests.ingest import test_ingest, test_ingest_process

pytestmark = pytest.mark.anyio

@pytest.fixture
def settings(pg_settings: Settings) -> Settings:
    """Overrides conftest's: the `app` and `client` fixtures then run on PostgreSQL."""
    return pg_settings


async def count(app: Any, table: Any) -> int:
    async with app.state.store.read() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_ingest_dedupe_and_one_ticket_under_concurrency(app, client, channel):
    assert app.state.engine.dialect.name == "postgresql"
    bot = await add_bot(app, channel.url)
    body = builders.turn("u-1", "aide", need_help=True)
    results = await asyncio.gather(*(client.post(bot.smartly_path, json=body)
                                     for _ in range(10)))
    assert [r.status_code for r in results] == [200] * 10
    assert sorted(r.json()["status"] for r in results) == ["duplicate"] * 9 + ["processed"]
    # Distinct turns of one user, concurrently: one ticket, every turn stored once.
    turns = [builders.turn("u-2", f"turn {n}", need_help=True) for n in range(20)]
    results = await asyncio.gather(*(client.post(bot.smartly_path, json=t) for t in turns))
    assert {r.status_code for r in results} == {200}
    assert sum(r.json()["ticket_opened"] for r in results) == 1
    assert await count(app, Ticket.__table__) == 2
    assert await count(app, InboundEvent.__table__) == 21
    async with app.state.store.read() as conn:
        seqs = (await conn.execute(sa.select(Message.__table__.c.seq)
                                   .order_by(Message.__table__.c.seq)
                                   .where(Message.__table__.c.conversation_id == 2))).scalars()
        seqs = list(seqs)
    assert seqs == list(range(1, len(seqs) + 1))  # gap-free per conversation


async def test_text_postgres_cannot_store_is_handled(app, client, channel):
    bot = await add_bot(app, channel.url)
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "a\x00b"))
    assert r.status_code == 200, r.text
    async with app.state.store.read() as conn:
        texts = set((await conn.execute(sa.select(Message.__table__.c.text))).scalars())
    assert "a\ufffdb" in texts
    # A NUL anywhere else: in the turn's context, in a key, in a Chatlayer message.
    r = await client.post(bot.smartly_path, json=builders.turn(
        "u-1", "y", state_name="s\x00t", custom_entities={"k\x00": "v\x00"}))
    assert r.status_code == 200, r.text
    r = await client.post(bot.chatlayer_path, json=builders.chatlayer(
        "u-1", bot.verify_token, {"text": "bot\x00says", "quick_replies": [
            {"content_type": "text", "title": "t\x00", "payload": "p\x00"}]}))
    assert r.status_code == 200, r.text
    r = await client.post(bot.smartly_path,
                             json=builders.turn("u-1", "x", skill_id="s" * 201))
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "payload.skill_id"


async def test_claim_race_and_delivery(app, client):
    channel = FakeChannel().start()
    try:
        bot = await add_bot(app, channel.url)
        r = await client.post(bot.smartly_path, json=builders.escalation("u-9"))
        ticket_id = r.json()["ticket_id"]
        agents = [await add_user(app, name) for name in ("ann", "bob", "cy")]

        async def claim(user: Any) -> str:
            try:
                async with app.state.store.transaction() as tx:
                    await tickets.claim(tx, ticket_id, tickets.Actor(user.id, user.username,
                                                                     "agent"))
            except errors.Forbidden:  # an agent may not see a colleague's ticket
                return "lost"
            return "won"

        outcomes = await asyncio.gather(*(claim(a) for a in agents))
        assert sorted(outcomes) == ["lost", "lost", "won"]
        winner = agents[outcomes.index("won")]
        actor = tickets.Actor(winner.id, winner.username, "agent")
        for n in range(3):
            async with app.state.store.transaction() as tx:
                await tickets.reply(tx, ticket_id, actor, f"reply {n}")
        await anyio.to_thread.run_sync(channel.wait_delivered, 3)
        assert channel.texts() == ["reply 0", "reply 1", "reply 2"]
    finally:
        channel.stop()


async def test_a_failing_write_is_isolated_in_savepoints(app, client, bot, channel):
    """The same case as on SQLite: on PostgreSQL a failed event rolls back to its savepoint
    and the rest of its batch commits."""
    await test_ingest.test_a_failing_write_leaves_nothing_and_spares_its_batch(
        app, client, bot, channel)


async def test_sign_in_throttle_on_two_instances(app, settings):
    """Concurrent sign-ins through two instances of one database: a right password never
    counts, and concurrent failures add up to the lock on both."""
    from connector.app import create_app

    await add_user(app, "alice")
    two = create_app(settings)
    async with two.router.lifespan_context(two), AsyncExitStack() as stack:
        tabs = [await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=instance), base_url="http://testserver"))
            for instance in (app, two)]

        async def login(n: int, password: str = PASSWORD) -> int:
            r = await tabs[n % 2].post("/api/login", json={"username": "alice",
                                                           "password": password})
            return r.status_code

        assert await asyncio.gather(*(login(n) for n in range(10))) == [200] * 10
        limit = settings.login_max_failures
        assert await asyncio.gather(*(login(n, "guess") for n in range(limit))) == [401] * limit
        assert [await login(0), await login(1)] == [429, 429]


# --- the writer process on PostgreSQL ---------------------------------------------------------

async def test_events_are_written_by_a_child_process(app, client, bot):
    await test_ingest_process.test_events_are_written_by_a_child_process(app, client, bot)


async def test_a_killed_writer_is_replaced_and_nothing_acknowledged_is_lost(app, client, bot):
    await test_ingest_process.test_a_killed_writer_is_replaced_and_nothing_acknowledged_is_lost(
        app, client, bot)


async def test_an_event_the_child_cannot_read_is_rejected_in_its_place(app, bot, settings):
    await test_ingest_process.test_an_event_the_child_cannot_read_is_rejected_in_its_place(
        app, bot, settings)


async def test_the_child_answers_batches_in_flight_in_the_order_they_were_sent(app, settings):
    """Batches written at once by the child (`ingest_concurrency`) commit in any order, but
    each answer goes back in its request's place: a batch that fails (an event of no
    integration) and slower, bigger batches around it keep their own answers."""
    await add_bot(app, "http://127.0.0.1:9/", name="bot")
    (integration_id,) = [r[0] for r in await query(app, "SELECT id FROM integration")]

    def batch(tag: str, n: int) -> list[Any]:
        out = []
        for i in range(n):
            body = builders.turn(f"u-{tag}-{i % 3}", f"{tag} {i}")
            out.append(test_ingest_process.parse_smartly(integration_id, body,
                                                         orjson.dumps(body)))
        return out

    writer = WriterProcess(settings)
    await writer.start()
    try:
        batches = [batch("a", 40), [test_ingest_process.ORPHAN], batch("b", 1),
                   batch("c", 25)]
        for b in batches:
            await writer.send(b)
        answers = [await writer.receive() for _ in batches]
    finally:
        await writer.stop()
    statuses = [[r and r.status for r in results] for results, _ in answers]
    assert statuses == [["processed"] * 40, [None], ["processed"], ["processed"] * 25]
    ids = [r.event_id for results, _ in answers for r in results if r is not None]
    texts = {row[0]: row[1] for row in await query(
        app, "SELECT event_id, text FROM message WHERE kind = 'user'")}
    assert [texts[i] for i in ids] == ([f"a {i}" for i in range(40)] + ["b 0"]
                                       + [f"c {i}" for i in range(25)])


async def query(app: Any, sql: str) -> list[Any]:
    async with app.state.store.read() as conn:
        return list((await conn.execute(sa.text(sql))).all())
