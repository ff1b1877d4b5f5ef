"""Agent replies out through the Chatlayer channel: a fake channel that is a real HTTP server."""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import random
from dataclasses import replace
from typing import Any

import anyio
import httpx
import pytest

from connector.accounts import integrations
from connector.channels import ChatlayerWebhook, Envelope, chatlayer_webhook, idempotency_key
from connector.delivery import policy
from connector.delivery.attempt import redact_url
from connector.domain import errors, outbox, tickets
from connector.settings import Settings
from connector.storage.models import Delivery, DeliveryAttempt
from tests import builders
from tests.conftest import add_bot, add_user, free_port, fresh_database, make_settings
from tests.fakes import FakeChannel, Reply
from tests.helpers import actor, rows, running, wait_settled, wait_until

pytestmark = pytest.mark.anyio


class Desk:
    """One agent on one app, with a claimed ticket per end user."""

    def __init__(self, app: Any, client: Any) -> None:
        self.app, self.client = app, client
        self.agent: tickets.Actor | None = None
        self.tickets: dict[tuple[str, str], int] = {}

    async def ticket(self, bot: Any, end_user: str) -> int:
        if self.agent is None:
            self.agent = actor(await add_user(self.app, "agent"))
        if (bot.id, end_user) not in self.tickets:
            r = await self.client.post(bot.smartly_path,
                                       json=builders.turn(end_user, "help", need_help=True))
            ticket_id = r.json()["ticket_id"]
            async with self.app.state.store.transaction() as tx:
                await tickets.claim(tx, ticket_id, self.agent)
            self.tickets[(bot.id, end_user)] = ticket_id
        return self.tickets[(bot.id, end_user)]

    async def reply(self, bot: Any, text: str, end_user: str = "u-1") -> dict[str, Any]:
        ticket_id = await self.ticket(bot, end_user)
        assert self.agent is not None
        async with self.app.state.store.transaction() as tx:
            return await tickets.reply(tx, ticket_id, self.agent, text)


@pytest.fixture
async def desk(app: Any, client: Any) -> Desk:
    return Desk(app, client)


async def delivery_of(app: Any, message: dict[str, Any]) -> dict[str, Any]:
    (found,) = await rows(app, Delivery, Delivery.message_id == message["id"])
    return found


async def attempts_of(app: Any, delivery_id: int) -> list[dict[str, Any]]:
    return await rows(app, DeliveryAttempt, DeliveryAttempt.delivery_id == delivery_id)


async def until_state(app: Any, message: dict[str, Any], state: str, min_attempts: int = 1,
                      ) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        d = await delivery_of(app, message)
        return d if d["state"] == state and d["attempts"] >= min_attempts else None

    return await wait_until(check, what=f"delivery {state} after {min_attempts} attempts")


# --- success ----------------------------------------------------------------------------------

async def test_2xx_is_delivered_in_chatlayer_shape(app, desk, bot, channel):
    message = await desk.reply(bot, "Bonjour, je suis là", end_user="u-42")
    assert message["delivery"]["state"] == "queued"
    (got,) = await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert got.body == {"recipient": {"id": "u-42"}, "verifyToken": bot.verify_token,
                        "message": {"text": "Bonjour, je suis là"}}
    assert got.headers["content-type"] == "application/json"
    assert got.path == "/chatlayer/webhook"

    (d,) = await wait_settled(app, 1)
    assert got.headers["idempotency-key"] == d["idempotency_key"]
    assert (d["state"], d["attempts"], d["last_status"], d["last_error"]) == (
        "delivered", 1, 200, None)
    assert d["delivered_at"] is not None
    (attempt,) = await attempts_of(app, d["id"])
    assert (attempt["attempt"], attempt["status_code"], attempt["outcome"]) == (1, 200,
                                                                              "delivered")
    async with app.state.store.read() as conn:
        state = (await outbox.for_messages(conn, [message["id"]]))[message["id"]]
    assert (state["state"], state["attempts"]) == ("delivered", 1)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_counts(app, desk, bot, channel, status):
    channel.script = [Reply(status)]
    await desk.reply(bot, "ok?")
    (d,) = await wait_settled(app, 1)
    assert (d["state"], d["last_status"]) == ("delivered", status)


# --- retries ----------------------------------------------------------------------------------

async def test_three_503_then_200_is_delivered_after_four_attempts(app, desk, bot, channel):
    channel.script = [Reply(503), Reply(503), Reply(503)]
    message = await desk.reply(bot, "after the outage")
    (d,) = await wait_settled(app, 1)
    assert (d["state"], d["attempts"], d["last_status"]) == ("delivered", 4, 200)
    history = await attempts_of(app, d["id"])
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in history] == [
        (1, 503, "retrying"), (2, 503, "retrying"), (3, 503, "retrying"),
        (4, 200, "delivered")]
    assert [a["error"] for a in history] == ["HTTP 503"] * 3 + [None]
    # Every attempt is the same request: body and idempotency key.
    assert len(channel.received) == 4
    assert {r.headers["idempotency-key"] for r in channel.received} == {d["idempotency_key"]}
    assert all(r.body == channel.received[0].body for r in channel.received)
    assert channel.received[0].body["message"] == {"text": message["text"]}


async def test_retrying_state_is_stored_and_queryable(app, desk, bot, channel):
    channel.default = Reply(500)
    message = await desk.reply(bot, "are you there?")
    d = await until_state(app, message, "retrying", min_attempts=2)
    assert (d["last_status"], d["last_error"]) == (500, "HTTP 500")
    assert d["next_attempt_at"] > d["updated_at"]  # scheduled after the failure
    async with app.state.store.read() as conn:
        state = (await outbox.for_messages(conn, [message["id"]]))[message["id"]]
        recent = await outbox.recent(conn, bot.id)
    assert state["state"] == "retrying" and state["attempts"] >= 2
    assert state["next_attempt_at"] is not None and state["last_error"] == "HTTP 500"
    assert recent[0]["message_id"] == message["id"]
    channel.default = Reply(200)
    d = await until_state(app, message, "delivered")
    assert d["last_error"] is None


async def test_429_retry_after_is_honoured(app, desk, bot, channel):
    channel.script = [Reply(429, headers={"Retry-After": "1"})]
    await desk.reply(bot, "slow down")
    (d,) = await wait_settled(app, 1)
    assert (d["state"], d["attempts"]) == ("delivered", 2)
    first, second = channel.received
    # The base backoff in these settings is 0.05 s: only Retry-After explains the wait.
    assert app.state.settings.retry_base_seconds < 1
    assert second.at - first.at >= 1.0
    assert [a["status_code"] for a in await attempts_of(app, d["id"])] == [429, 200]


async def test_408_and_timeouts_are_retried(tmp_path, migrated_db, channel):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path, delivery_timeout_seconds=0.3)
    channel.script = [Reply(408), Reply(200, delay=1.0)]  # the second answers too late
    async with running(settings) as (app, client):
        bot = await add_bot(app, channel.url)
        await Desk(app, client).reply(bot, "patience")
        (d,) = await wait_settled(app, 1)
    assert (d["state"], d["attempts"]) == ("delivered", 3)
    history = await rows_after(settings, d["id"])
    assert [(a["status_code"], a["error"]) for a in history] == [
        (408, "HTTP 408"), (None, "timeout"), (200, None)]
    assert len({r.headers["idempotency-key"] for r in channel.received}) == 1


async def rows_after(settings: Settings, delivery_id: int) -> list[dict[str, Any]]:
    """Read attempt rows after the app stopped (a new engine on the same file)."""
    from connector.storage.db import create_engine
    from connector.storage.store import Store

    engine = create_engine(settings)
    try:
        return await attempts_of(Store(engine), delivery_id)
    finally:
        await engine.dispose()


async def test_connection_refused_is_retried_until_the_channel_exists(app, desk, channel):
    closed = f"http://127.0.0.1:{free_port()}/chatlayer/webhook"
    bot = await add_bot(app, closed)
    message = await desk.reply(bot, "anyone?")
    d = await until_state(app, message, "retrying", min_attempts=2)
    assert d["last_status"] is None
    assert "connection failed" in d["last_error"]
    assert channel.received == []
    # The channel comes up (here: the integration now points at a live one).
    async with app.state.store.transaction() as tx:
        await integrations.update(tx.conn, bot.id, channel_url=channel.url)
    d = await until_state(app, message, "delivered")
    assert channel.texts() == ["anyone?"]
    assert [a["outcome"] for a in await attempts_of(app, d["id"])][-1] == "delivered"


async def test_one_failing_channel_does_not_hold_up_another(app, desk, bot, channel):
    broken = await add_bot(app, f"http://127.0.0.1:{free_port()}/down", name="broken")
    stuck = await desk.reply(broken, "to nowhere")
    await desk.reply(bot, "to the user")
    await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert channel.texts() == ["to the user"]
    assert (await delivery_of(app, stuck))["state"] in ("queued", "retrying")


# --- failures for good ------------------------------------------------------------------------

@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_other_4xx_fails_at_once_then_resend_delivers(app, desk, bot, channel, status):
    channel.script = [Reply(status)]
    bad = await desk.reply(bot, "first")
    d = await until_state(app, bad, "failed")
    assert (d["attempts"], d["last_status"], d["last_error"]) == (1, status, f"HTTP {status}")
    # Not retried: the next reply of the conversation goes out and nothing else.
    await desk.reply(bot, "second")
    await wait_settled(app, 2)
    assert [r.body["message"]["text"] for r in channel.received] == ["first", "second"]
    assert (await delivery_of(app, bad))["attempts"] == 1

    async with app.state.store.transaction() as tx:
        queued = await outbox.resend(tx, bad["id"])
    assert queued["state"] == "queued"
    d = await until_state(app, bad, "delivered")
    assert d["attempts"] == 2
    assert channel.texts() == ["second", "first"]
    first_tries = [r for r in channel.received if r.body["message"]["text"] == "first"]
    assert len({r.headers["idempotency-key"] for r in first_tries}) == 1
    assert [a["outcome"] for a in await attempts_of(app, d["id"])] == ["failed", "delivered"]


async def test_resend_only_failed_deliveries(app, desk, bot, channel):
    message = await desk.reply(bot, "fine")
    await wait_settled(app, 1)
    with pytest.raises(errors.Conflict, match="delivery is delivered"):
        async with app.state.store.transaction() as tx:
            await outbox.resend(tx, message["id"])
    with pytest.raises(errors.NotFound, match="no delivery"):
        async with app.state.store.transaction() as tx:
            await outbox.resend(tx, message["id"] + 999)


async def test_gives_up_after_the_give_up_time(tmp_path, migrated_db, channel):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path, retry_give_up_seconds=0.5)
    channel.default = Reply(503)
    async with running(settings) as (app, client):
        bot = await add_bot(app, channel.url)
        desk = Desk(app, client)
        message = await desk.reply(bot, "lost cause")
        d = await until_state(app, message, "failed", min_attempts=2)
        assert d["last_error"].startswith(f"gave up after {d['attempts']} attempts")
        assert d["last_status"] == 503
        # After giving up the retry clock starts again on a manual resend.
        channel.default = Reply(200)
        async with app.state.store.transaction() as tx:
            await outbox.resend(tx, message["id"])
        d = await until_state(app, message, "delivered")
    assert channel.texts() == ["lost cause"]


# --- order ------------------------------------------------------------------------------------

async def test_replies_of_a_conversation_arrive_in_order_across_an_outage(app, desk, bot,
                                                                           channel):
    channel.default = Reply(503)
    sent: dict[str, list[str]] = {"u-a": [], "u-b": []}
    for i in range(4):
        for user in sent:
            text = f"{user} reply {i}"
            await desk.reply(bot, text, end_user=user)
            sent[user].append(text)
    async def failing_a_while() -> bool:
        return len(channel.received) >= 6

    await wait_until(failing_a_while, what="a few failed attempts")
    channel.default = Reply(200)
    await wait_settled(app, 8)

    for user, texts in sent.items():
        mine = [r.body["message"]["text"] for r in channel.delivered
                if r.body["recipient"]["id"] == user]
        assert mine == texts
        # No reply was even tried before the previous one was delivered.
        tried = [texts.index(r.body["message"]["text"]) for r in channel.received
                 if r.body["recipient"]["id"] == user]
        assert tried == sorted(tried)
    assert all(d["state"] == "delivered" for d in await rows(app, Delivery))


# --- backoff and Retry-After ------------------------------------------------------------------

def test_backoff_is_exponential_and_capped_without_jitter():
    s = Settings(retry_base_seconds=0.5, retry_max_delay_seconds=30, retry_jitter=0)
    delays = [policy.backoff(s, n) for n in range(1, 12)]
    assert delays[:5] == [0.5 * 2 ** (n - 1) for n in range(1, 6)]
    assert all(b == 2 * a for a, b in itertools.pairwise(delays[:6]))
    assert max(delays) == 30 and delays[-1] == 30
    assert delays == sorted(delays)


def test_backoff_jitter_stays_within_bounds():
    s = Settings(retry_base_seconds=1, retry_max_delay_seconds=600, retry_jitter=0.2)
    rng = random.Random(7)
    for attempt in (1, 3, 6, 20):
        plain = min(600, 2 ** (attempt - 1))
        samples = [policy.backoff(s, attempt, rng) for _ in range(500)]
        assert all(plain * 0.8 <= x <= plain * 1.2 for x in samples)
        assert len(set(samples)) > 100  # actually jittered
        assert min(samples) < plain < max(samples)


def test_default_schedule_is_live_chat_fast_and_lasts_hours():
    s = Settings()
    worst = [policy.backoff(s, n, _Max()) for n in range(1, 40)]
    # After three failed attempts the next one comes within a minute.
    assert sum(worst[:3]) < 60 and worst[3] < 60
    # Retries go on for hours before giving up.
    assert s.retry_give_up_seconds >= 3600 * 6


class _Max(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_parse_retry_after_seconds_and_http_date():
    assert chatlayer_webhook.parse_retry_after(httpx.Headers({"Retry-After": "120"})) == 120.0
    assert chatlayer_webhook.parse_retry_after(httpx.Headers({"retry-after": " 0 "})) == 0.0
    future = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    date = email.utils.format_datetime(future, usegmt=True)
    got = chatlayer_webhook.parse_retry_after(httpx.Headers({"Retry-After": date}))
    assert got is not None and 85 <= got <= 90
    past = email.utils.format_datetime(future - dt.timedelta(hours=1), usegmt=True)
    assert chatlayer_webhook.parse_retry_after(httpx.Headers({"Retry-After": past})) == 0.0
    for junk in ("soon", "-5", "1.5e3", ""):
        assert chatlayer_webhook.parse_retry_after(httpx.Headers({"Retry-After": junk})) is None
    assert chatlayer_webhook.parse_retry_after(httpx.Headers()) is None
    assert chatlayer_webhook.parse_retry_after(None) is None


@pytest.mark.parametrize(("status", "state"), [
    (200, "delivered"), (299, "delivered"), (408, "retrying"), (425, "retrying"),
    (429, "retrying"), (500, "retrying"), (502, "retrying"), (503, "retrying"),
    (599, "retrying"), (400, "failed"), (403, "failed"), (404, "failed"), (301, "failed"),
])
def test_classify(status, state):
    assert chatlayer_webhook.classify(status, httpx.Headers()).state == state


async def test_transport_errors_are_retried(channel):
    job = Envelope(f"http://127.0.0.1:{free_port()}/down", "token", "u-1", {"text": "hi"},
                   idempotency_key())
    async with httpx.AsyncClient() as http:
        refused = await ChatlayerWebhook(http, 2.0).deliver(job)
        channel.script = [Reply(200, delay=1.0)]
        late = await ChatlayerWebhook(http, 0.2).deliver(replace(job, channel_url=channel.url))
    assert (refused.state, refused.status, refused.error, refused.transport_error) == (
        "retrying", None, "ConnectError: connection failed", "ConnectError")
    assert (late.state, late.status, late.error) == ("retrying", None, "timeout")
    assert late.transport_error in ("ReadTimeout", "TimeoutError")


def test_redact_url_drops_credentials_and_query():
    url = "https://user:pw@channel.example:8443/hook/path?token=abc&x=1#frag"
    assert redact_url(url) == "https://channel.example:8443/hook/path"


def test_fake_channel_counts_only_2xx_as_delivered():
    fake = FakeChannel().start()
    try:
        fake.script = [Reply(500)]
        with httpx.Client() as http:
            assert http.post(fake.url, json={"message": {"text": "a"}}).status_code == 500
            assert http.post(fake.url, json={"message": {"text": "b"}}).status_code == 200
        assert fake.texts() == ["b"] and len(fake.received) == 2
    finally:
        fake.stop()
