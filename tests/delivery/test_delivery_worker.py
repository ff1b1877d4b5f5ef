"""The delivery worker against an in-memory channel: order, retries, failures, the policy.

Deliveries are made by the real domain (an agent's reply to a ticket) in a real
SQLite file; the worker runs as in the app, with hand-over and polling. Only the
channel is in memory (`MemoryChannel`): each test scripts what it answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from connector.accounts import integrations
from connector.channels import Channel, MemoryChannel, Outcome
from connector.delivery import policy
from connector.delivery.worker import DeliveryWorker
from connector.domain import tickets
from connector.domain.transcript import ConversationRef
from connector.settings import Settings
from connector.storage.db import create_engine, create_sync_engine, utcnow
from connector.storage.models import Conversation, DeliveryAttempt
from connector.storage.store import Store, SyncTx
from tests.conftest import add_user
from tests.helpers import actor, deliveries, rows, wait_settled, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    engine = create_engine(settings)
    store = Store(engine, sync_engine=create_sync_engine(settings))
    yield store
    await store.close()
    await engine.dispose()


@asynccontextmanager
async def working(store: Store, settings: Settings,
                  channel: MemoryChannel) -> AsyncIterator[DeliveryWorker]:
    """A worker sending through `channel`, wired to `store` as the app wires it."""
    async def channel_for(integration_id: str) -> Channel:
        return channel

    worker = DeliveryWorker(store, channel_for, settings)
    store.on_delivery = worker.wake
    store.hand_deliveries_to(worker.hand_over, settings.delivery_lease_seconds)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Desk:
    """One integration and one agent, with an assigned ticket per end user."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tickets: dict[str, int] = {}

    async def open(self) -> Desk:
        async with self.store.transaction() as tx:
            created = await integrations.create(tx.conn, name="bot",
                                                channel_url="http://channel.invalid/hook")
        self.integration_id = created.integration.id
        self.agent = actor(await add_user(self.store, "alice"))
        return self

    async def reply(self, end_user: str, text: str) -> dict[str, Any]:
        if end_user not in self.tickets:
            self.tickets[end_user] = await self.store.write(self._ticket, end_user)
        async with self.store.transaction() as tx:
            return await tickets.reply(tx, self.tickets[end_user], self.agent, text)

    def _ticket(self, tx: SyncTx, end_user: str) -> int:
        now = utcnow()
        conversation_id = tx.conn.execute(sa.insert(Conversation.__table__).values(
            integration_id=self.integration_id, end_user_id=end_user, last_seq=0,
            created_at=now, updated_at=now).returning(Conversation.__table__.c.id)).scalar_one()
        ticket = tickets.open_ticket(
            tx, ConversationRef(conversation_id, self.integration_id, end_user, None),
            reason="agent_request", lang=None, platform=None, skill_id=None, category=None)
        assert ticket is not None
        tickets.claim_sync(tx, ticket["id"], self.agent)
        return ticket["id"]


def text_of(job: Any) -> str:
    return job.message["text"]


async def attempts(store: Store) -> list[tuple[int | None, str, str | None]]:
    return [(a["status_code"], a["outcome"], a["error"])
            for a in await rows(store, DeliveryAttempt)]


async def test_retried_then_delivered_with_the_same_job(store, settings):
    channel = MemoryChannel(Outcome.retry("HTTP 503", status=503),
                            Outcome.retry("timeout", transport_error="ReadTimeout"))
    desk = await Desk(store).open()
    async with working(store, settings, channel):
        message = await desk.reply("u-1", "after the outage")
        (d,) = await wait_settled(store, 1)
    assert (d["state"], d["attempts"], d["last_status"], d["last_error"]) == (
        "delivered", 3, 200, None)
    assert await attempts(store) == [(503, "retrying", "HTTP 503"),
                                     (None, "retrying", "timeout"), (200, "delivered", None)]
    # Each attempt is the same delivery, one more attempt on.
    assert [(j.id, j.message_id, j.attempts) for j in channel.sent] == [
        (d["id"], message["id"], n) for n in range(3)]
    assert {j.idempotency_key for j in channel.sent} == {d["idempotency_key"]}
    assert [text_of(j) for j in channel.delivered] == ["after the outage"]


async def test_retry_after_sets_the_next_attempt(store, settings):
    channel = MemoryChannel(Outcome.retry("HTTP 429", status=429, retry_after=3600))
    desk = await Desk(store).open()
    async with working(store, settings, channel):
        await desk.reply("u-1", "slow down")
        # The attempt and the delivery's new state are written in one transaction.
        await wait_until(lambda: rows(store, DeliveryAttempt), what="the attempt recorded")
        (d,) = await deliveries(store)
    assert (d["state"], d["attempts"], d["last_status"]) == ("retrying", 1, 429)
    # The channel's wait, not the 0.05 s backoff of these settings.
    assert d["next_attempt_at"] - d["updated_at"] == dt.timedelta(seconds=3600)
    assert len(channel.sent) == 1


async def test_failed_for_good_is_not_retried_and_the_next_reply_goes(store, settings):
    channel = MemoryChannel(Outcome.failed("HTTP 400", status=400))
    desk = await Desk(store).open()
    async with working(store, settings, channel):
        await desk.reply("u-1", "first")
        await desk.reply("u-1", "second")
        first, second = await wait_settled(store, 2)
    assert (first["state"], first["attempts"], first["last_status"], first["last_error"]) == (
        "failed", 1, 400, "HTTP 400")
    assert (second["state"], second["attempts"]) == ("delivered", 1)
    assert [text_of(j) for j in channel.sent] == ["first", "second"]
    assert await attempts(store) == [(400, "failed", "HTTP 400"), (200, "delivered", None)]


async def test_replies_of_a_conversation_go_in_order_across_an_outage(store, settings):
    channel = MemoryChannel(default=Outcome.retry("HTTP 503", status=503))
    desk = await Desk(store).open()
    sent: dict[str, list[str]] = {"u-a": [], "u-b": []}
    async with working(store, settings, channel):
        for i in range(3):
            for user in sent:
                text = f"{user} reply {i}"
                await desk.reply(user, text)
                sent[user].append(text)

        async def failing_a_while() -> bool:
            return len(channel.sent) >= 6

        await wait_until(failing_a_while, what="a few failed attempts")
        channel.default = Outcome.delivered(200)
        await wait_settled(store, 6)
    for user, texts in sent.items():
        mine = [j for j in channel.sent if j.recipient_id == user]
        assert [text_of(j) for j in channel.delivered if j.recipient_id == user] == texts
        # No reply was even tried before the previous one was delivered.
        tried = [texts.index(text_of(j)) for j in mine]
        assert tried == sorted(tried)
        assert len({j.conversation_id for j in mine}) == 1


# --- the retry policy -------------------------------------------------------------------------

def test_next_delay_honours_retry_after_up_to_the_give_up_horizon():
    s = Settings(retry_base_seconds=1, retry_jitter=0, retry_give_up_seconds=600)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert policy.next_delay(s, 1, None, retry_since=start, now=start) == 1
    assert policy.next_delay(s, 3, None, retry_since=start, now=start) == 4
    assert policy.next_delay(s, 1, 30.0, retry_since=start, now=start) == 30
    # A wait asked for beyond the horizon is cut to it, and then it is too late.
    assert policy.next_delay(s, 1, 1e12, retry_since=start, now=start) == 600
    later = start + dt.timedelta(seconds=1)
    assert policy.next_delay(s, 1, 1e12, retry_since=start, now=later) is None
    assert policy.next_delay(s, 1, None, retry_since=start,
                             now=start + dt.timedelta(seconds=599.5)) is None
    assert policy.gave_up(7, "HTTP 503") == "gave up after 7 attempts: HTTP 503"
