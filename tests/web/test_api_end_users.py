"""Erasure of one end user (`POST /api/end-users/erase`, `domain.erasure`) through the
real app, on SQLite and on PostgreSQL: afterwards every row of every table (SQLite's FTS5
shadow tables and PostgreSQL's search column included), dumped as text, holds nothing
of the person's words nor their id, while another end user's data is untouched and
the ticket keeps its timings for the reports.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import asyncpg
import httpx
import pytest

from connector.settings import Settings
from connector.storage.models import Conversation, Ticket
from tests import builders
from tests.conftest import add_user, sign_in
from tests.fakes import FakeChannel
from tests.helpers import ok, rows, wait_settled

pytestmark = pytest.mark.anyio

_t = Ticket.__table__
#: Their id, and words found nowhere else: each lower-case, one search token.
THEM = "zq-person-7781@example.org"
WORDS = {"user": "xylophonic", "bot": "quintessentially", "agent": "zebrafication",
         "note": "obfuscatory", "comment": "plumbago", "test": "ventriloquy"}
#: Another end user, who must keep everything.
OTHER, OTHER_WORD = "someone-else", "kumquatish"


@pytest.fixture
def settings(each_dialect: Settings) -> Settings:
    """Overrides conftest's: the `app` fixture runs on each dialect in turn."""
    return each_dialect


@pytest.fixture
async def staff(app: Any) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        out = {}
        for name, role in [("alice", "agent"), ("root", "admin")]:
            await add_user(app, name, role)
            out[name] = await sign_in(stack, app, name)
        yield out


async def say(client: httpx.AsyncClient, bot: Any, user: str, text: str,
              **kw: Any) -> dict[str, Any]:
    r = await client.post(bot.smartly_path, json=builders.turn(user, text, **kw))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def their_world(app: Any, client: httpx.AsyncClient, bot: Any, channel: FakeChannel,
                      staff: dict[str, httpx.AsyncClient]) -> int:
    """Their words in every place the connector keeps text: messages (and so the search
    index), raw bodies, deliveries, stream events, an event webhook's outbox, a stored
    idempotent answer, a satisfaction comment, an admin's test send."""
    alice, root = staff["alice"], staff["root"]
    await ok(root.post("/api/webhooks", json={"url": channel.url + "/events",
                                              "events": ["message.created",
                                                         "ticket.created"]}))
    await say(client, bot, THEM, f"hello {WORDS['user']}", answer=f"I am {WORDS['bot']}")
    tid = (await say(client, bot, THEM, "help", need_help=True))["ticket_id"]
    await say(client, bot, OTHER, f"hi {OTHER_WORD}", answer="ok")
    await ok(alice.post(f"/api/tickets/{tid}/claim"))
    await ok(alice.post(f"/api/tickets/{tid}/messages", json={"text": WORDS["agent"]},
                        headers={"Idempotency-Key": "erase-test-1"}))
    await ok(alice.post(f"/api/tickets/{tid}/notes", json={"text": WORDS["note"]}))
    await ok(alice.post(f"/api/tickets/{tid}/resolve", json={"survey": True}))
    await wait_settled(app, 2)
    await say(client, bot, THEM, "4", answer=None)
    await say(client, bot, THEM, f"so {WORDS['comment']}", answer=None)
    await ok(root.post(f"/api/integrations/{bot.id}/test",
                       json={"recipient": THEM, "text": WORDS["test"]}))
    return tid


async def dump(settings: Settings) -> str:
    """Every row of every table, as text (lower-cased): on SQLite every table of the file,
    the FTS5 shadow tables' blobs included; on PostgreSQL every table of the schema."""
    if settings.sqlite_path is not None:
        return await anyio.to_thread.run_sync(_dump_sqlite, settings)
    url = settings.database_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert "message" in tables and "inbound_event" in tables
        out = []
        for table in tables:
            out += [r[0] for r in await conn.fetch(
                f'SELECT row_to_json(t)::text FROM "{table}" t')]  # noqa: S608
        return "\n".join(out).lower()
    finally:
        await conn.close()


def _dump_sqlite(settings: Settings) -> str:
    assert settings.sqlite_path is not None
    with sqlite3.connect(settings.sqlite_path) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"message_fts_data", "message_fts_idx", "inbound_event"} <= set(tables)
        out = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                out += [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row]
    return "\n".join(out).lower()


async def test_erasure_leaves_nothing_of_their_words_or_id_anywhere(
        app, client, bot, channel, staff, settings):
    tid = await their_world(app, client, bot, channel, staff)
    before = await dump(settings)
    for word in [THEM, *WORDS.values(), OTHER_WORD]:
        assert word in before, word  # the test would prove nothing otherwise
    found = await ok(staff["root"].get("/api/search", params={"q": WORDS["agent"]}))
    assert found["results"]
    (ticket_before,) = await rows(app, Ticket, _t.c.id == tid)
    assert ticket_before["csat_comment"] == f"so {WORDS['comment']}"

    r = await staff["alice"].post("/api/end-users/erase",
                                  json={"integration": bot.id, "end_user": THEM})
    assert r.status_code == 403
    out = await ok(staff["root"].post("/api/end-users/erase",
                                      json={"integration": bot.id, "end_user": THEM}))
    assert out["pseudonym"].startswith("erased-") and THEM not in str(out)
    assert out["tickets"] == 1 and out["messages"] >= 8 and out["raw_events"] >= 4
    assert out["deliveries"] >= 2 and out["test_sends"] == 1
    assert out["webhook_deliveries"] >= 1 and out["idempotent_answers"] == 1

    after = await dump(settings)
    left = [word for word in [THEM, *WORDS.values()] if word in after]
    assert left == []
    assert OTHER_WORD in after and OTHER in after
    found = await ok(staff["root"].get("/api/search", params={"q": WORDS["agent"]}))
    assert found["results"] == []

    # The ticket keeps its timings and score, now anonymous; its transcript says erased.
    (ticket,) = await rows(app, Ticket, _t.c.id == tid)
    for column in ("opened_at", "claimed_at", "first_response_at", "resolved_at",
                   "state", "csat_score"):
        assert ticket[column] == ticket_before[column], column
    assert ticket["csat_comment"] is None
    conv = {c["end_user_id"] for c in await rows(app, Conversation)}
    assert conv == {out["pseudonym"], OTHER}
    detail = await ok(staff["root"].get(f"/api/tickets/{tid}"))
    assert {m["text"] for m in detail["messages"]} == {"[erased]"}
    # Recorded in the audit trail, by whom, without their id.
    audit = await ok(staff["root"].get("/api/audit", params={"action": "end_user.erased"}))
    (event,) = [e for e in audit["events"] if e["action"] == "end_user.erased"]
    assert event["actor"]["username"] == "root" and THEM not in str(event)


async def test_erasing_an_unknown_integration_is_404_and_nobody_is_no_error(
        app, client, bot, staff):
    r = await staff["root"].post("/api/end-users/erase",
                                 json={"integration": "nope", "end_user": THEM})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    out = await ok(staff["root"].post("/api/end-users/erase",
                                      json={"integration": bot.id, "end_user": "nobody"}))
    assert out["pseudonym"] is None and out["messages"] == 0
    r = await staff["root"].post("/api/end-users/erase", json={"integration": bot.id})
    assert r.status_code == 422
