"""Agent replies through the API to the channel: in-memory hand-over, order, lost hand-overs.

Every test runs on SQLite and on PostgreSQL (127.0.0.1:5432, trust auth), with the
real app over HTTP and a fake channel that is a real HTTP server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from connector.settings import Settings
from connector.storage.migrate import upgrade
from connector.storage.models import Delivery, DeliveryAttempt, Message
from tests import builders
from tests.conftest import add_bot, add_user, fresh_database, make_settings, sign_in
from tests.fakes import FakeChannel, Reply
from tests.helpers import postgres_database, rows, running, wait_settled, wait_until

pytestmark = pytest.mark.anyio

@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path,
             migrated_db: Path) -> Iterator[dict[str, Any]]:
    """Settings overrides naming a fresh, migrated database of either kind."""
    if request.param == "sqlite":
        fresh_database(migrated_db, tmp_path)
        yield {}
        return
    with postgres_database() as url:
        upgrade(make_settings(tmp_path, database_url=url))
        yield {"database_url": url}


@pytest.fixture
def settings(database: dict[str, Any], tmp_path: Path) -> Settings:
    return make_settings(tmp_path, **database)


@asynccontextmanager
async def desk(app: Any, client: httpx.AsyncClient, channel: FakeChannel,
               *people: tuple[str, str]) -> AsyncIterator[tuple[Any, list[httpx.AsyncClient]]]:
    """A bot on `channel` and a signed-in HTTP client for each (username, role)."""
    bot = await add_bot(app, channel.url)
    async with AsyncExitStack() as stack:
        clients = []
        for name, role in people:
            await add_user(app, name, role)
            clients.append(await sign_in(stack, app, name))
        yield bot, clients


async def handover(client: httpx.AsyncClient, bot: Any, end_user: str) -> int:
    r = await client.post(bot.smartly_path, json=builders.turn(end_user, "help", need_help=True))
    assert r.status_code == 200 and r.json()["ticket_opened"], r.text
    return r.json()["ticket_id"]


async def claimed(client: httpx.AsyncClient, agent: httpx.AsyncClient, bot: Any,
                  end_user: str = "u-1") -> int:
    ticket = await handover(client, bot, end_user)
    assert (await agent.post(f"/api/tickets/{ticket}/claim")).status_code == 200
    return ticket


async def post_reply(agent: httpx.AsyncClient, ticket: int, text: str) -> httpx.Response:
    return await agent.post(f"/api/tickets/{ticket}/messages", json={"text": text})


def texts(received: list[Any]) -> list[str]:
    return [r.body["message"]["text"] for r in received]


# --- in-memory hand-over ----------------------------------------------------------------------

async def test_a_reply_is_sent_at_once_without_polling_or_a_claim(settings, channel,
                                                                   monkeypatch):
    slow_poll = settings.model_copy(update={"delivery_poll_seconds": 30.0})
    async with running(slow_poll) as (app, client), \
            desk(app, client, channel, ("alice", "agent")) as (bot, (alice,)):
        ticket = await claimed(client, alice, bot)
        polls: list[float] = []

        async def claims_nothing() -> list[Any]:
            polls.append(time.monotonic())
            return []

        # From here on, polling finds nothing: only the hand-over can send the reply.
        monkeypatch.setattr(app.state.delivery, "_claim_due", claims_nothing)
        started = time.monotonic()
        r = await post_reply(alice, ticket, "Bonjour, Alice ici")
        assert r.status_code == 201, r.text
        assert r.json()["delivery"]["state"] == "queued"
        (got,) = await anyio.to_thread.run_sync(channel.wait_delivered, 1, 5.0)
        assert got.at - started < 3.0  # well before the 30 s poll interval
        (d,) = await wait_settled(app, 1)
        assert (d["state"], d["attempts"], d["lease_until"]) == ("delivered", 1, None)
        assert got.headers["idempotency-key"] == d["idempotency_key"]
        (attempt,) = await rows(app, DeliveryAttempt)
        assert (attempt["status_code"], attempt["outcome"]) == (200, "delivered")
    assert polls == []  # nothing was due when the worker looked


async def test_replies_of_a_conversation_stay_in_order_while_the_first_is_retried(
        app, client, channel):
    channel.default = Reply(503)
    async with desk(app, client, channel, ("alice", "agent")) as (bot, (alice,)):
        ticket = await claimed(client, alice, bot)
        other = await claimed(client, alice, bot, "u-2")
        for text in ("first", "second", "third"):
            assert (await post_reply(alice, ticket, text)).status_code == 201

        async def first_retried() -> bool:
            return texts(channel.received).count("first") >= 2

        await wait_until(first_retried, what="the first reply retried")
        # Another conversation is not held up by this one's outage.
        channel.script = [Reply(200)]
        assert (await post_reply(alice, other, "elsewhere")).status_code == 201
        await anyio.to_thread.run_sync(channel.wait_delivered, 1)
        channel.default = Reply(200)
        await wait_settled(app, 4)
    mine = [t for t in texts(channel.received) if t != "elsewhere"]
    # The later replies were not even tried before the first one got through.
    assert mine[-3:] == ["first", "second", "third"]
    assert set(mine[:-3]) == {"first"}
    assert texts(channel.delivered) == ["elsewhere", "first", "second", "third"]


async def test_concurrent_replies_to_one_ticket_arrive_in_transcript_order(app, client,
                                                                          channel):
    async with desk(app, client, channel, ("alice", "agent")) as (bot, (alice,)):
        ticket = await claimed(client, alice, bot)
        results = await asyncio.gather(*(post_reply(alice, ticket, f"reply {n}")
                                         for n in range(6)))
        assert [r.status_code for r in results] == [201] * 6
        await wait_settled(app, 6)
    by_seq = sorted((r.json()["seq"], r.json()["text"]) for r in results)
    assert texts(channel.received) == [text for _, text in by_seq]


async def test_a_hand_over_lost_with_its_process_is_sent_once_the_lease_runs_out(
        settings, channel, monkeypatch):
    short = settings.model_copy(update={"delivery_lease_seconds": 1.5,
                                        "delivery_timeout_seconds": 1.0,
                                        "delivery_poll_seconds": 0.1})
    async with running(short) as (app, client), \
            desk(app, client, channel, ("alice", "agent")) as (bot, (alice,)):
        ticket = await claimed(client, alice, bot)
        # The process "dies" between the reply's commit and the send: the job is dropped.
        monkeypatch.setattr(app.state.store, "on_handoff", lambda jobs: None)
        r = await post_reply(alice, ticket, "still there?")
        assert r.status_code == 201
        committed = time.monotonic()
        (d,) = await rows(app, Delivery)
        assert d["state"] == "queued" and d["attempts"] == 0
        assert d["lease_until"] is not None  # leased to the dead process: nobody sends it
        await anyio.sleep(0.5)
        assert channel.received == []
    async with running(short) as (app, _):  # the restarted process
        (got,) = await anyio.to_thread.run_sync(channel.wait_delivered, 1)
        assert got.at - committed >= 1.0  # after the lease, not before
        (d,) = await wait_settled(app, 1)
        assert (d["state"], d["attempts"]) == ("delivered", 1)
    assert texts(channel.received) == ["still there?"]


# --- the reply route ------------------------------------------------------------------------

async def test_two_agents_race_for_a_ticket_and_only_the_winner_replies(app, client,
                                                                        channel):
    async with desk(app, client, channel, ("alice", "agent"), ("bob", "agent")) as (
            bot, agents):
        ticket = await handover(client, bot, "u-race")

        async def claim_and_reply(agent: httpx.AsyncClient, name: str) -> tuple[int, int]:
            claim = await agent.post(f"/api/tickets/{ticket}/claim")
            r = await post_reply(agent, ticket, f"{name} here")
            return claim.status_code, r.status_code

        results = await asyncio.gather(claim_and_reply(agents[0], "alice"),
                                       claim_and_reply(agents[1], "bob"))
        # The loser may no longer see the ticket: 403 for its claim as for its reply.
        assert sorted(results) == [(200, 201), (403, 403)], results
        winner = "alice" if results[0] == (200, 201) else "bob"
        await wait_settled(app, 1)
    assert texts(channel.received) == [f"{winner} here"]
    assert len(await rows(app, Delivery)) == 1


async def test_reply_and_note_errors_answer_as_before_and_store_nothing(app, client,
                                                                       channel):
    async with desk(app, client, channel, ("alice", "agent"), ("bob", "agent"),
                    ("sam", "supervisor")) as (bot, (alice, bob, sam)):
        queued = await handover(client, bot, "u-q")
        ticket = await claimed(client, alice, bot)
        cases = [
            (alice, 999_999, "messages", {"text": "hi"}, 404, "not_found", "no such ticket"),
            (alice, 999_999, "notes", {"text": "hi"}, 404, "not_found", "no such ticket"),
            (bob, ticket, "messages", {"text": "hi"}, 403, "forbidden",
             "not allowed to see this ticket"),
            (bob, ticket, "notes", {"text": "hi"}, 403, "forbidden",
             "not allowed to see this ticket"),
            (alice, queued, "messages", {"text": "hi"}, 409, "conflict",
             "only the agent assigned to an open ticket can reply"),
            (sam, ticket, "messages", {"text": "hi"}, 409, "conflict",
             "only the agent assigned to an open ticket can reply"),
            (alice, ticket, "messages", {"text": "  "}, 422, "invalid", None),
        ]
        for agent, ticket_id, what, body, status, error, message in cases:
            r = await agent.post(f"/api/tickets/{ticket_id}/{what}", json=body)
            assert (r.status_code, r.json()["error"]) == (status, error), (what, r.text)
            if message is not None:
                assert r.json()["message"] == message
        assert (await alice.post(f"/api/tickets/{ticket}/resolve", json={})).status_code == 200
        r = await post_reply(alice, ticket, "too late")
        assert (r.status_code, r.json()["error"]) == (409, "conflict")
    assert await rows(app, Delivery) == []
    assert [m for m in await rows(app, Message) if m["kind"] in ("agent", "note")] == []
    assert channel.received == []
