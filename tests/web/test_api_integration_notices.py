"""What the end user is told (`domain.notices`), through the real app: the integration's
messages set with PATCH /api/integrations/{id}, handovers posted to the webhook, the
notices arriving at a fake channel that is a real HTTP server, as bot messages in the
transcript with live `message.created` events.

Every test runs on SQLite (the ingest writer in its child process) and on PostgreSQL
(127.0.0.1:5432, trust auth; the writer in the server). Routing is manual, so that no
ticket is assigned but by the test.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa

from connector.domain import notices
from connector.settings import Settings
from connector.storage.migrate import upgrade
from connector.storage.models import Delivery, Message, StreamEvent, Ticket, User
from tests import builders
from tests.conftest import Bot, add_user, fresh_database, make_settings, sign_in
from tests.fakes import FakeChannel
from tests.helpers import execute, postgres_database, rows, wait_settled, wait_until

pytestmark = pytest.mark.anyio

#: A zone far from the machine's (UTC+14, no summer time): "today" there is often
#: another date than here.
ZONE = "Pacific/Kiritimati"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path,
             migrated_db: Path) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        fresh_database(migrated_db, tmp_path)
        yield {}
        return
    with postgres_database() as url:
        upgrade(make_settings(tmp_path, database_url=url))
        yield {"database_url": url}


@pytest.fixture
def settings(database: dict[str, Any], tmp_path: Path) -> Settings:
    return make_settings(tmp_path, routing="manual", **database)


@pytest.fixture
async def admin(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    await add_user(app, "root", "admin")
    async with AsyncExitStack() as stack:
        yield await sign_in(stack, app, "root")


async def configure(admin: httpx.AsyncClient, bot: Bot, **fields: Any) -> dict[str, Any]:
    r = await admin.patch(f"/api/integrations/{bot.id}", json=fields)
    assert r.status_code == 200, r.text
    return r.json()


async def handover(client: httpx.AsyncClient, bot: Bot, end_user: str) -> int:
    r = await client.post(bot.smartly_path, json=builders.turn(end_user, "help", need_help=True))
    assert r.status_code == 200 and r.json()["ticket_opened"], r.text
    return r.json()["ticket_id"]


async def online_agent(app: Any, name: str, stack: AsyncExitStack,
                       display_name: str | None = None) -> tuple[httpx.AsyncClient, int]:
    """An agent whose status is online with a console open (presence, as a socket gives)."""
    user = await add_user(app, name, "agent")
    agent = await sign_in(stack, app, name)
    body: dict[str, Any] = {"status": "online"}
    if display_name:
        body["display_name"] = display_name
    assert (await agent.patch("/api/me", json=body)).status_code == 200
    await app.state.hub.presence.connected(user.id)
    return agent, user.id


async def bot_messages(app: Any, ticket: int) -> list[dict[str, Any]]:
    return await rows(app, Message, Message.__table__.c.ticket_id == ticket,
                      Message.__table__.c.kind == "bot")


async def sent(channel: FakeChannel, count: int) -> list[tuple[str, str]]:
    """The first `count` deliveries: (recipient, text) by recipient, each recipient's in
    the order they arrived (only a conversation's deliveries are ordered)."""
    got = await anyio.to_thread.run_sync(channel.wait_delivered, count)
    return sorted(((r.body["recipient"]["id"], r.body["message"]["text"]) for r in got),
                  key=lambda pair: pair[0])


def today_in(zone: str) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()


# --- the queue message ------------------------------------------------------------------------

async def test_the_queue_message_tells_the_position_and_the_recent_wait(app, client, bot,
                                                                        channel, admin):
    async with AsyncExitStack() as stack:
        alice, _ = await online_agent(app, "alice", stack)
        # One ticket assigned in the last hour, after a wait of 3 minutes.
        earlier = await handover(client, bot, "u-0")
        assert (await alice.post(f"/api/tickets/{earlier}/claim")).status_code == 200
        t = Ticket.__table__
        (row,) = await rows(app, Ticket, t.c.id == earlier)
        await execute(app, sa.update(t).where(t.c.id == earlier).values(
            opened_at=row["claimed_at"] - dt.timedelta(seconds=180)))
        await configure(admin, bot, queue_message=(
            "You are number {position} in the queue; expected wait: {wait}. "
            "{agent} {unknown} {0} {position!r} {} <b>kept</b>"))
        first = await handover(client, bot, "u-1")
        second = await handover(client, bot, "u-2")
        assert await sent(channel, 2) == [
            ("u-1", "You are number 1 in the queue; expected wait: about 3 minutes. "
                    "{agent} {unknown} {0} {position!r} {} <b>kept</b>"),
            ("u-2", "You are number 2 in the queue; expected wait: about 3 minutes. "
                    "{agent} {unknown} {0} {position!r} {} <b>kept</b>")]
        for ticket, place in ((first, 1), (second, 2)):
            (message,) = await bot_messages(app, ticket)
            assert message["text"].startswith(f"You are number {place} ")
            assert message["context"] == {"event": "notice", "notice": "queue"}
            assert message["body"] == {"text": message["text"]}
        # The agent's console sees the notice live, like any message of a queued ticket.
        r = await alice.get(f"/api/tickets/{first}")
        kinds = [(m["kind"], (m["context"] or {}).get("event")) for m in r.json()["messages"]]
        assert kinds[-2:] == [("system", "handover"), ("bot", "notice")]
        events = await rows(app, StreamEvent, StreamEvent.__table__.c.type == "message.created",
                            StreamEvent.__table__.c.ticket_id == first)
        assert [e["payload"]["message"]["kind"] for e in events][-1] == "bot"
        assert events[-1]["public"] is True
        (delivery, *_) = await wait_settled(app, 2)
        assert delivery["state"] == "delivered"


async def test_with_no_recent_assignment_the_wait_is_a_few_minutes(app, client, bot, channel,
                                                                   admin):
    await configure(admin, bot, queue_message="Wait: {wait}, place {position}")
    await handover(client, bot, "u-1")
    assert await sent(channel, 1) == [("u-1", "Wait: a few minutes, place 1")]


# --- the assigned message ---------------------------------------------------------------------

async def test_the_assigned_message_names_the_agent_after_a_claim_and_a_transfer(
        app, client, bot, channel, admin):
    await configure(admin, bot, assigned_message="Hello, {agent} here. {position}")
    async with AsyncExitStack() as stack:
        alice, _ = await online_agent(app, "alice", stack, display_name="Alice Martin")
        await online_agent(app, "bob", stack)  # no display name: the username
        ticket = await handover(client, bot, "u-1")
        assert (await alice.post(f"/api/tickets/{ticket}/claim")).status_code == 200
        assert await sent(channel, 1) == [("u-1", "Hello, Alice Martin here. {position}")]
        r = await alice.post(f"/api/tickets/{ticket}/transfer", json={"to": "bob"})
        assert r.status_code == 200, r.text
        assert (await sent(channel, 2))[1] == ("u-1", "Hello, bob here. {position}")
        notes = await bot_messages(app, ticket)
        assert [m["context"]["notice"] for m in notes] == ["assigned", "assigned"]


async def test_notices_and_replies_reach_the_end_user_in_transcript_order(app, client, bot,
                                                                          channel, admin):
    await configure(admin, bot, queue_message="Queued ({position})",
                    assigned_message="{agent} joined")
    async with AsyncExitStack() as stack:
        alice, _ = await online_agent(app, "alice", stack)
        ticket = await handover(client, bot, "u-1")
        assert (await alice.post(f"/api/tickets/{ticket}/claim")).status_code == 200
        r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "How can I help?"})
        assert r.status_code == 201
        assert [text for _, text in await sent(channel, 3)] == [
            "Queued (1)", "alice joined", "How can I help?"]

        async def shown() -> list[tuple[str, str, str | None]] | None:
            got = (await alice.get(f"/api/tickets/{ticket}")).json()["messages"]
            out = [(m["kind"], m["text"], (m.get("delivery") or {}).get("state"))
                   for m in got if m["kind"] in ("bot", "agent")]
            return out if all(state == "delivered" for *_, state in out[1:]) else None

        # Read back, the notices show their delivery like the reply (the bot's own answer
        # in the webhook was delivered by the bot platform: none).
        assert await wait_until(shown, what="deliveries recorded") == [
            ("bot", "Hi!", None), ("bot", "Queued (1)", "delivered"),
            ("bot", "alice joined", "delivered"), ("agent", "How can I help?", "delivered")]


# --- the offline message ----------------------------------------------------------------------

async def test_outside_business_hours_in_another_zone_the_offline_message_is_sent(
        app, client, bot, channel, admin):
    today = today_in(ZONE)
    closed_today = {d: [["00:00", "24:00"]] for n, d in enumerate(notices.DAYS)
                    if n != today.weekday()}
    # Tomorrow there (also the day after the test's midnight, should it pass one).
    closed_today.pop(notices.DAYS[(today.weekday() + 1) % 7], None)
    async with AsyncExitStack() as stack:
        await online_agent(app, "alice", stack)  # someone is there: only the hours count
        await configure(admin, bot, queue_message="Queued", offline_message="We are closed",
                        business_hours={"timezone": ZONE, "weekly": closed_today})
        await handover(client, bot, "u-1")
        # The same by a closed date, on a schedule otherwise open all week.
        await configure(admin, bot, business_hours={
            "timezone": ZONE, "weekly": {d: [["00:00", "24:00"]] for d in notices.DAYS},
            "closed_dates": [today.isoformat(), (today + dt.timedelta(days=1)).isoformat()]})
        second = await handover(client, bot, "u-2")
        # Open all week and no closed date: the queue message.
        await configure(admin, bot, business_hours={
            "timezone": ZONE, "weekly": {d: [["00:00", "24:00"]] for d in notices.DAYS}})
        await handover(client, bot, "u-3")
        assert await sent(channel, 3) == [("u-1", "We are closed"), ("u-2", "We are closed"),
                                          ("u-3", "Queued")]
    (message,) = await bot_messages(app, second)
    assert message["context"] == {"event": "notice", "notice": "offline"}
    # The ticket stays queued, to be routed when agents are back.
    assert (await rows(app, Ticket, Ticket.__table__.c.id == second))[0]["state"] == "queued"


async def test_with_no_agent_online_the_offline_message_is_sent(app, client, bot, channel,
                                                                admin):
    await configure(admin, bot, queue_message="Queued", offline_message="Nobody is here")
    async with AsyncExitStack() as stack:
        # Signed in but away, or online without a console: not present.
        away = await add_user(app, "away", "agent")
        c = await sign_in(stack, app, "away")
        assert (await c.patch("/api/me", json={"status": "away"})).status_code == 200
        await app.state.hub.presence.connected(away.id)
        no_console = await sign_in(stack, app, (await add_user(app, "bob")).username)
        assert (await no_console.patch("/api/me", json={"status": "online"})).status_code == 200
        await handover(client, bot, "u-1")
        # Online with a console, even at capacity, is present: the queue message.
        alice, alice_id = await online_agent(app, "alice", stack)
        await execute(app, sa.update(User.__table__).where(User.__table__.c.id == alice_id)
                      .values(max_concurrent=1))
        busy = await handover(client, bot, "u-busy")
        assert (await alice.post(f"/api/tickets/{busy}/claim")).status_code == 200
        await handover(client, bot, "u-2")
    assert await sent(channel, 3) == [("u-1", "Nobody is here"), ("u-2", "Queued"),
                                      ("u-busy", "Queued")]


# --- nothing set, nothing sent ----------------------------------------------------------------

async def test_nothing_is_sent_when_no_message_is_set(app, client, bot, channel, admin):
    await configure(admin, bot, queue_message="", assigned_message=None, offline_message=" ",
                    business_hours={"timezone": ZONE, "weekly": {}})
    async with AsyncExitStack() as stack:
        alice, _ = await online_agent(app, "alice", stack)
        ticket = await handover(client, bot, "u-1")
        assert (await alice.post(f"/api/tickets/{ticket}/claim")).status_code == 200
        r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "the only one"})
        assert r.status_code == 201
        assert await sent(channel, 1) == [("u-1", "the only one")]
    assert await bot_messages(app, ticket) == []
    assert len(await rows(app, Delivery)) == 1


# --- the API ----------------------------------------------------------------------------------

async def test_the_fields_are_shown_set_and_cleared(app, bot, admin):
    r = await admin.get(f"/api/integrations/{bot.id}")
    assert {k: r.json()[k] for k in ("queue_message", "assigned_message", "offline_message",
                                     "business_hours", "first_response_target_seconds")} == {
        "queue_message": None, "assigned_message": None, "offline_message": None,
        "business_hours": None, "first_response_target_seconds": 120}
    hours = {"timezone": "Europe/Paris", "weekly": {"fri": [["09:00", "17:30"]],
                                                    "mon": [["09:00", "12:00"]]},
             "closed_dates": ["2026-12-25"]}
    out = await configure(admin, bot, queue_message="Q {position}", assigned_message="A",
                          offline_message="O", business_hours=hours,
                          first_response_target_seconds=300)
    assert out["business_hours"] == {"timezone": "Europe/Paris",
                                     "weekly": {"mon": [["09:00", "12:00"]],
                                                "fri": [["09:00", "17:30"]]},
                                     "closed_dates": ["2026-12-25"]}
    assert (out["queue_message"], out["first_response_target_seconds"]) == ("Q {position}", 300)
    # Fields not given are kept; null clears a message or the hours, resets the target.
    out = await configure(admin, bot, name="renamed")
    assert (out["assigned_message"], out["business_hours"]["timezone"]) == ("A", "Europe/Paris")
    out = await configure(admin, bot, queue_message=None, business_hours=None,
                          first_response_target_seconds=None)
    assert (out["queue_message"], out["business_hours"],
            out["first_response_target_seconds"]) == (None, None, 120)
    listed = (await admin.get("/api/integrations")).json()["integrations"]
    assert listed[0]["assigned_message"] == "A"


@pytest.mark.parametrize(("fields", "field"), [
    ({"business_hours": {"timezone": "Europe/Nowhere", "weekly": {}}},
     "business_hours.timezone"),
    ({"business_hours": {"timezone": "Europe/Paris", "weekly": {"lundi": []}}},
     "business_hours.weekly.lundi"),
    ({"business_hours": {"timezone": "Europe/Paris", "weekly": {"mon": [["9h", "18:00"]]}}},
     "business_hours.weekly.mon.0.0"),
    ({"business_hours": {"timezone": "Europe/Paris", "weekly": {"mon": [["18:00", "09:00"]]}}},
     "business_hours.weekly.mon.0.1"),
    ({"business_hours": {"timezone": "Europe/Paris", "weekly": {},
                         "closed_dates": ["2026-13-01"]}}, "business_hours.closed_dates.0"),
    ({"business_hours": {"timezone": "Europe/Paris"}}, "business_hours.weekly"),
    ({"business_hours": "9-18"}, "business_hours"),
    ({"queue_message": "x" * 1001}, "queue_message"),
    ({"first_response_target_seconds": 0}, "first_response_target_seconds"),
    ({"first_response_target_seconds": 86401}, "first_response_target_seconds"),
])
async def test_bad_values_are_refused_422_naming_the_field(app, bot, admin, fields, field):
    before = (await admin.get(f"/api/integrations/{bot.id}")).json()
    r = await admin.patch(f"/api/integrations/{bot.id}", json={"name": "changed", **fields})
    assert r.status_code == 422, r.text
    assert r.json()["fields"][0]["field"] == field, r.text
    assert (await admin.get(f"/api/integrations/{bot.id}")).json() == before


async def test_only_admins_set_them(app, bot):
    await add_user(app, "sup", "supervisor")
    async with AsyncExitStack() as stack:
        sup = await sign_in(stack, app, "sup")
        r = await sup.patch(f"/api/integrations/{bot.id}", json={"queue_message": "hi"})
        assert r.status_code == 403
