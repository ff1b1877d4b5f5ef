"""Retention (`domain.retention`) through the real app, on SQLite and on PostgreSQL:
conversations and tickets are made by real webhooks and the real API, then their times
are set by updating rows (no waiting), and the purge runs as of now.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connector.app import _housekeeping
from connector.domain import retention, ticket_reports
from connector.settings import Settings
from connector.storage.db import utcnow
from connector.storage.models import (
    Conversation,
    DedupeKey,
    Delivery,
    DeliveryAttempt,
    InboundEvent,
    Message,
    StreamEvent,
    Ticket,
)
from tests import builders
from tests.conftest import add_user, sign_in
from tests.helpers import execute, ok, rows, wait_settled, wait_until

pytestmark = pytest.mark.anyio

_conv = Conversation.__table__
_msg = Message.__table__
_t = Ticket.__table__
_ev = InboundEvent.__table__
NOW = utcnow()
LONG_AGO = NOW - dt.timedelta(days=100)
LAST_WEEK = NOW - dt.timedelta(days=7)


@pytest.fixture
def settings(each_dialect: Settings) -> Settings:
    """Overrides conftest's: the `app` fixture runs on each dialect in turn."""
    return each_dialect


@pytest.fixture
async def alice(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncExitStack() as stack:
        await add_user(app, "alice", "agent")
        yield await sign_in(stack, app, "alice")


def keeping(settings: Settings, bot_only: int = 0, resolved: int = 0) -> Settings:
    return settings.model_copy(update={"retention_bot_only_days": bot_only,
                                       "retention_resolved_days": resolved})


async def say(client: httpx.AsyncClient, bot: Any, user: str, text: str = "hello",
              **kw: Any) -> dict[str, Any]:
    r = await client.post(bot.smartly_path, json=builders.turn(user, text, **kw))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def conversation(app: Any, user: str) -> dict[str, Any] | None:
    found = await rows(app, Conversation, _conv.c.end_user_id == user)
    return found[0] if found else None


async def age(app: Any, user: str, when: dt.datetime) -> None:
    """Everything of `user`'s conversation happened at `when`."""
    conv = await conversation(app, user)
    assert conv is not None
    cid = conv["id"]
    await execute(app, sa.update(_conv).where(_conv.c.id == cid)
                  .values(updated_at=when, created_at=when))
    await execute(app, sa.update(_msg).where(_msg.c.conversation_id == cid)
                  .values(created_at=when))
    await execute(app, sa.update(_t).where(_t.c.conversation_id == cid).values(
        opened_at=when, claimed_at=when + dt.timedelta(seconds=30),
        first_response_at=when + dt.timedelta(seconds=45),
        resolved_at=sa.case((_t.c.resolved_at.is_(None), None),
                            else_=when + dt.timedelta(seconds=600))))


async def counts(app: Any, user: str) -> dict[str, int]:
    conv = await conversation(app, user)
    if conv is None:
        return {"messages": 0}
    return {"messages": len(await rows(app, Message, _msg.c.conversation_id == conv["id"]))}


async def test_bot_only_conversations_idle_past_the_limit_are_deleted_whole(
        app, client, bot, settings, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 3)  # several transactions per conversation
    for n in range(4):
        await say(client, bot, "idle", f"turn {n}")
    await say(client, bot, "recent", "hi")
    await say(client, bot, "handed", "help", need_help=True)
    for user in ("idle", "handed"):
        await age(app, user, LONG_AGO)
    await age(app, "recent", LAST_WEEK)
    idle = await conversation(app, "idle")
    assert idle is not None
    events = [m["event_id"] for m in await rows(app, Message,
                                                _msg.c.conversation_id == idle["id"])]
    assert len(events) == 8 and None not in events

    assert await retention.purge(app.state.store, keeping(settings), NOW) == retention.Purged()
    out = await retention.purge(app.state.store, keeping(settings, bot_only=30), NOW)
    assert (out.conversations, out.messages) == (1, 8)
    assert await conversation(app, "idle") is None
    assert await rows(app, InboundEvent, _ev.c.id.in_(events)) == []
    fingerprints = {e["fingerprint"] for e in await rows(app, InboundEvent)}
    assert {k["fingerprint"] for k in await rows(app, DedupeKey)} <= fingerprints
    # Seen last week, or once handed over: kept, messages and all.
    assert (await counts(app, "recent"))["messages"] == 2
    assert (await counts(app, "handed"))["messages"] >= 1
    assert await retention.purge(app.state.store, keeping(settings, bot_only=30), NOW) \
        == retention.Purged()


async def test_resolved_transcripts_go_and_the_reports_keep_their_figures(
        app, client, bot, alice, settings, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)
    tids = {}
    for user in ("old", "recent", "open", "reopened"):
        await say(client, bot, user, f"hello from {user}")
        tids[user] = (await say(client, bot, user, "help", need_help=True))["ticket_id"]
        await ok(alice.post(f"/api/tickets/{tids[user]}/claim"))
        await ok(alice.post(f"/api/tickets/{tids[user]}/messages", json={"text": "hi"}))
        if user != "open":
            await ok(alice.post(f"/api/tickets/{tids[user]}/resolve",
                                json={"survey": user == "old"}))
    await wait_settled(app, 5)  # four replies, one survey prompt
    await say(client, bot, "old", "5", answer=None)
    await say(client, bot, "old", "a comment", answer=None)
    for user in ("old", "open", "reopened"):
        await age(app, user, LONG_AGO)
    await age(app, "recent", LAST_WEEK)
    await say(client, bot, "reopened", "again", need_help=True)  # a new ticket, open
    (old,) = await rows(app, Ticket, _t.c.id == tids["old"])
    assert (old["csat_score"], old["csat_comment"]) == (5, "a comment")
    await execute(app, sa.update(StreamEvent.__table__).values(created_at=NOW))
    rng = ticket_reports.DateRange(LONG_AGO.date(), NOW.date())
    figures = await ticket_reports.figures(app.state.store, rng, "agent", NOW)
    table = [r async for r in ticket_reports.chunks(app.state.store, rng, NOW)]
    before = {u: await counts(app, u) for u in tids}

    out = await retention.purge(app.state.store, keeping(settings, resolved=90), NOW)
    assert out.messages == before["old"]["messages"] and out.comments == 1
    assert out.stream_events > 0 and out.conversations == 0
    after = {u: await counts(app, u) for u in tids}
    assert after == {**before, "old": {"messages": 0}}
    old_conv = await conversation(app, "old")
    assert old_conv is not None
    assert await rows(app, Delivery, Delivery.__table__.c.conversation_id == old_conv["id"]) \
        == []
    assert await rows(app, StreamEvent, StreamEvent.__table__.c.ticket_id == tids["old"]) == []
    assert await rows(app, StreamEvent, StreamEvent.__table__.c.ticket_id == tids["recent"])
    delivery_ids = {d["id"] for d in await rows(app, Delivery)}
    assert {a["delivery_id"] for a in await rows(app, DeliveryAttempt)} <= delivery_ids

    # The same figures, and the same rows but for the emptied comment.
    assert await ticket_reports.figures(app.state.store, rng, "agent", NOW) == figures
    again = [r async for r in ticket_reports.chunks(app.state.store, rng, NOW)]
    for chunk in table:
        for row in chunk:
            if row["id"] == tids["old"]:
                row["csat_comment"] = None
    assert again == table
    assert await retention.purge(app.state.store, keeping(settings, resolved=90), NOW) \
        == retention.Purged()


async def test_the_housekeeping_task_runs_the_purge(app, client, bot, settings):
    await say(client, bot, "idle")
    await age(app, "idle", LONG_AGO)
    task = asyncio.create_task(_housekeeping(app.state.store, keeping(settings, bot_only=30),
                                             every=0.01))
    try:
        async def gone() -> bool:
            return await conversation(app, "idle") is None
        await wait_until(gone, 10, "the idle conversation to be purged")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_retention_settings_are_checked():
    from connector.settings import ConfigError, load_settings

    fields = Settings.model_fields
    assert fields["retention_bot_only_days"].default == 30
    assert fields["retention_resolved_days"].default == 0
    for name in ("retention_bot_only_days", "retention_resolved_days"):
        with pytest.raises(ConfigError, match=f"CONNECTOR_{name.upper()}"):
            load_settings(**{name: -1})
