"""`/metrics` of the real app after real traffic: a Smartly handover, a claim, a reply
delivered to the fake channel, one that fails for good; on SQLite (whose writes go
through the writer child process, counted by the server) and on PostgreSQL.

Counters are read before and after, and must have moved by exactly the traffic's
amounts; the cluster-wide gauges (queue, dead letters, recent waits) come from
the database.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.settings import Settings
from tests import builders
from tests.conftest import add_bot, add_user, make_settings, sign_in
from tests.fakes import FakeChannel, Reply
from tests.helpers import wait_until
from tests.metrics.scrape import Samples, parse, value

pytestmark = pytest.mark.anyio

TOKEN = "metrics-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(each_dialect: Settings, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=each_dialect.database_url, metrics_token=TOKEN)


async def scrape(client: httpx.AsyncClient) -> Samples:
    r = await client.get("/metrics", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def until_moved(client: httpx.AsyncClient, before: Samples, name: str,
                      **labels: str) -> Samples:
    """The first scrape in which `name{labels}` has moved since `before`."""
    async def scraped() -> Samples | None:
        now = await scrape(client)
        return now if moved(before, now, name, **labels) else None
    return await wait_until(scraped, what=f"{name} {labels} to move")


async def test_counters_and_gauges_follow_the_traffic(app: Any, client: httpx.AsyncClient,
                                                      channel: FakeChannel) -> None:
    app.state.metrics_cluster.max_age = 0  # every scrape reads the database
    # The batches are written by the writer child process (both dialects): counted by the
    # server from the child's answers.
    assert app.state.ingest._process is not None
    bot = await add_bot(app, channel.url)
    before = await scrape(client)
    assert value(before, "connector_metrics_database_up") == 1
    assert value(before, "connector_bus_up", backend="memory") == 1
    assert value(before, "connector_dead_letters", kind="reply") == 0

    body = builders.turn("u-1", "I want a human", need_help=True)
    r = await client.post(bot.smartly_path, json=body)
    assert r.status_code == 200 and r.json()["ticket_opened"], r.text
    ticket = r.json()["ticket_id"]
    assert (await client.post(bot.smartly_path, json=body)).status_code == 200  # duplicate
    wrong = bot.smartly_path.replace(bot.key, "wrong-key")
    assert (await client.post(wrong, json=body)).status_code == 401
    assert (await client.post(bot.smartly_path, json={"nope": 1})).status_code == 422

    queued = await scrape(client)
    for outcome in ("processed", "duplicate", "unauthorized", "invalid"):
        assert moved(before, queued, "connector_webhook_events_total", source="smartly",
                     outcome=outcome) == 1, outcome
    # Two events reached the writer (the others were refused at the door), one batch each.
    assert moved(before, queued, "connector_ingest_batch_size_events_count") == 2
    assert moved(before, queued, "connector_ingest_batch_size_events_sum") == 2
    assert moved(before, queued, "connector_ingest_commit_seconds_count") == 2
    assert value(queued, "connector_queue_tickets", integration=bot.id, category="") == 1
    assert value(queued, "connector_queue_longest_wait_seconds", integration=bot.id,
                 category="") >= 0
    assert value(queued, "connector_handover_wait_seconds_gcount") == 0

    async with AsyncExitStack() as stack:
        await add_user(app, "alice", "agent")
        agent = await sign_in(stack, app, "alice")
        assert (await agent.post(f"/api/tickets/{ticket}/claim")).status_code == 200
        r = await agent.post(f"/api/tickets/{ticket}/messages", json={"text": "hello"})
        assert r.status_code in (200, 201), r.text
        answered = await until_moved(client, before, "connector_deliveries_total",
                                     kind="reply", outcome="delivered")
        assert [d.body["message"]["text"] for d in channel.delivered] == ["hello"]
        assert moved(before, answered, "connector_deliveries_total", kind="reply",
                     outcome="delivered") == 1
        assert moved(before, answered, "connector_delivery_attempt_seconds_count",
                     kind="reply") == 1
        assert moved(before, answered, "connector_delivery_retries_total", kind="reply") == 0
        assert ("connector_queue_tickets", (("category", ""), ("integration", bot.id))) \
            not in answered  # nothing waits
        assert value(answered, "connector_handover_wait_seconds_gcount") == 1
        assert value(answered, "connector_handover_wait_seconds_bucket", le="+Inf") == 1
        assert value(answered, "connector_first_response_seconds_gcount") == 1

        # A reply the channel refuses for good (400): one dead letter.
        channel.default = Reply(400)
        r = await agent.post(f"/api/tickets/{ticket}/messages", json={"text": "again"})
        assert r.status_code in (200, 201), r.text
        await until_moved(client, before, "connector_deliveries_total", kind="reply",
                          outcome="failed")
        # A scrape reads the database, then the process's counters: one that began its read
        # just before the failure was committed shows the counter moved but not the dead
        # letter. Counters only grow, so the first scrape with the dead letter has both.
        failed = await until_moved(client, before, "connector_dead_letters", kind="reply")
    assert value(failed, "connector_dead_letters", kind="reply") == 1
    assert moved(before, failed, "connector_deliveries_total", kind="reply",
                 outcome="failed") == 1
    assert moved(before, failed, "connector_delivery_attempt_seconds_count", kind="reply") == 2
    assert value(failed, "connector_db_pool_size_connections") >= 1


async def test_the_cache_serves_scrapes_within_its_age(app: Any, client: httpx.AsyncClient,
                                                       channel: FakeChannel) -> None:
    """Within `max_age` a scrape reuses the last read: a new queued ticket shows only once
    the cache is let go (no clock involved: the age is set, not waited for)."""
    bot = await add_bot(app, channel.url)
    app.state.metrics_cluster.max_age = 3600
    first = await scrape(client)
    r = await client.post(bot.smartly_path, json=builders.turn("u-2", "human", need_help=True))
    assert r.status_code == 200, r.text
    cached = await scrape(client)
    assert value(cached, "connector_queue_tickets", integration=bot.id, category="") == \
        value(first, "connector_queue_tickets", integration=bot.id, category="") == 0
    app.state.metrics_cluster.max_age = 0
    fresh = await scrape(client)
    assert value(fresh, "connector_queue_tickets", integration=bot.id, category="") == 1
