"""connector.domain.search on both databases, through the migrated schema: words match
whatever their case and accents, the indexes follow inserts, updates and deletes in
the message's transaction, an agent finds only what `GET /api/tickets/{id}` would show
them, query syntax typed by users is inert, paging by cursor, snippets."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from connector.domain import search
from connector.domain.errors import FieldError
from connector.domain.roles import Actor
from connector.storage.migrate import upgrade
from connector.storage.models import Conversation, Integration, Message, Ticket, User
from tests.conftest import fresh_database, make_settings
from tests.helpers import postgres_database

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
ALICE = Actor(1, "alice", "agent")
BOB = Actor(2, "bob", "agent")
SAM = Actor(3, "sam", "supervisor")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        fresh_database(request.getfixturevalue("migrated_db"), tmp_path)
        yield make_settings(tmp_path).database_url
        return
    with postgres_database() as pg:
        upgrade(make_settings(tmp_path, database_url=pg))
        yield pg


@pytest.fixture
async def conn(url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as c:
            await seed(c)
        async with engine.connect() as c:
            yield c
            await c.rollback()
    finally:
        await engine.dispose()


def _ins(model: Any, **values: Any) -> sa.Insert:
    return sa.insert(model.__table__).values(**values)


async def seed(c: AsyncConnection) -> None:
    """Conversation 1: bot history, ticket 1 (resolved, was alice's), ticket 2 (bob's,
    open, with a note). Conversation 2: ticket 3 queued. Conversation 3: bot only."""
    await c.execute(_ins(Integration, id="i1", name="b", channel_url="http://x",
                         verify_token="v", key_hash="k", created_at=T0))
    await c.execute(_ins(Integration, id="i2", name="c", channel_url="http://x",
                         verify_token="v", key_hash="k", created_at=T0))
    for uid, name, role in [(1, "alice", "agent"), (2, "bob", "agent"), (3, "sam", "supervisor")]:
        await c.execute(_ins(User, id=uid, username=name, password_hash="x", role=role,
                             created_at=T0, password_changed_at=T0))
    for cid, integ in [(1, "i1"), (2, "i2"), (3, "i1")]:
        await c.execute(_ins(Conversation, id=cid, integration_id=integ, end_user_id=f"u{cid}",
                             created_at=T0, updated_at=T0))
    for tid, cid, integ, state, assignee in [(1, 1, "i1", "resolved", 1),
                                             (2, 1, "i1", "assigned", 2),
                                             (3, 2, "i2", "queued", None)]:
        await c.execute(_ins(Ticket, id=tid, conversation_id=cid, integration_id=integ,
                             state=state, assignee_id=assignee, reason="need_help", opened_at=T0))
    messages = [
        # id, conversation, seq, ticket, kind, text
        (1, 1, 1, None, "bot", "Bonjour, je suis le robot du café."),
        (2, 1, 2, 1, "user", "Mon CAFÉ est froid, et le thé aussi"),
        (3, 1, 3, 1, "agent", "Désolé pour le cafe froid"),
        (4, 1, 4, 2, "user", "Encore un problème de café crème"),
        (5, 1, 5, 2, "note", "Note interne: client du café râleur"),
        (6, 1, 6, 2, "system", "café system line"),
        (7, 2, 1, 3, "user", "Where is my coffee? Naïve question about the café"),
        (8, 3, 1, None, "bot", "café for nobody (no ticket)"),
        (9, 2, 2, 3, "user", 'Tricky "café" OR NOT* NEAR(a b) -x ^y col:z'),
    ]
    for i, (mid, cid, seq, tid, kind, text) in enumerate(messages):
        await c.execute(_ins(Message, id=mid, conversation_id=cid, seq=seq, ticket_id=tid,
                             kind=kind, text=text, created_at=T0 + dt.timedelta(minutes=i)))


async def ids(c: AsyncConnection, actor: Actor, q: str, **params: str) -> list[int]:
    page = await search.search(c, actor, search.parse({"q": q, **params}))
    return [r["message_id"] for r in page["results"]]


async def test_case_and_accents_do_not_matter(conn: AsyncConnection) -> None:
    expected = [9, 7, 5, 4, 3, 2, 1]  # newest first; no system line, no ticketless chat
    for q in ["cafe", "café", "CAFE", "Café", "CAFÉ"]:
        assert await ids(conn, SAM, q) == expected, q
    assert await ids(conn, SAM, "naive") == [7]
    assert await ids(conn, SAM, "desole") == [3]
    assert await ids(conn, SAM, "probleme creme") == [4]  # every word required
    assert await ids(conn, SAM, "the") == [7, 2]  # "the café" and "thé"
    assert await ids(conn, SAM, "aussi") == [2]
    assert await ids(conn, SAM, "caf") == []  # whole words only
    assert await ids(conn, SAM, "coffee") == [7]
    assert await ids(conn, SAM, "nothing") == []


async def test_an_agent_finds_only_what_they_may_read(conn: AsyncConnection) -> None:
    # Alice: her earlier ticket 1 and the bot's history of its conversation; the queued
    # ticket 3; not bob's ticket 2, its note included.
    assert await ids(conn, ALICE, "cafe") == [9, 7, 3, 2, 1]
    # Bob: his ticket 2 (note included), the bot's history; not alice's ticket 1.
    assert await ids(conn, BOB, "cafe") == [9, 7, 5, 4, 1]
    page = await search.search(conn, ALICE, search.parse({"q": "robot"}))
    assert [(r["message_id"], r["ticket_id"]) for r in page["results"]] == [(1, 1)]
    page = await search.search(conn, BOB, search.parse({"q": "robot"}))
    assert [(r["message_id"], r["ticket_id"]) for r in page["results"]] == [(1, 2)]


async def test_filters_and_paging(conn: AsyncConnection) -> None:
    assert await ids(conn, SAM, "cafe", state="queued") == [9, 7]
    assert await ids(conn, SAM, "cafe", integration="i1") == [5, 4, 3, 2, 1]
    assert await ids(conn, SAM, "cafe", **{"from": "2026-01-05", "to": "2026-01-05"}) \
        == [9, 7, 5, 4, 3, 2, 1]
    assert await ids(conn, SAM, "cafe", **{"to": "2026-01-04"}) == []
    assert await ids(conn, SAM, "cafe", **{"from": "2026-01-06"}) == []
    assert await ids(conn, SAM, "cafe", **{"from": "2026-01-06", "to": "2026-01-04"}) == []
    assert await ids(conn, SAM, "cafe", **{"from": "0001-01-01", "to": "9999-12-31"}) \
        == [9, 7, 5, 4, 3, 2, 1]
    seen, before = [], None
    while True:
        params = {"q": "cafe", "limit": "3"} | ({"before": str(before)} if before else {})
        page = await search.search(conn, SAM, search.parse(params))
        seen += [r["message_id"] for r in page["results"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [9, 7, 5, 4, 3, 2, 1]


async def test_query_syntax_is_inert(conn: AsyncConnection) -> None:
    for q in ['"café', 'OR', 'NOT*', 'NEAR(a b)', "col:z", "^y", "-x", "café & !x | y:*",
              "'); DROP TABLE message; --"]:
        await ids(conn, SAM, q)  # no syntax error on either engine
    assert await ids(conn, SAM, "NEAR(a b)") == [9]
    assert await ids(conn, SAM, "col:z") == [9]


async def test_the_index_follows_updates_and_deletes(conn: AsyncConnection) -> None:
    await conn.execute(sa.update(Message.__table__).where(Message.__table__.c.id == 3)
                       .values(text="Remplacé par du chocolat"))
    assert 3 not in await ids(conn, SAM, "cafe")
    assert await ids(conn, SAM, "chocolat") == [3]
    await conn.execute(sa.delete(Message.__table__).where(Message.__table__.c.id == 3))
    assert await ids(conn, SAM, "chocolat") == []


async def test_snippets_mark_the_matched_words(conn: AsyncConnection) -> None:
    page = await search.search(conn, SAM, search.parse({"q": "froid cafe"}))
    assert [r["snippet"] for r in page["results"]] == [
        [["Désolé pour le ", False], ["cafe", True], [" ", False], ["froid", True]],
        [["Mon ", False], ["CAFÉ", True], [" est ", False], ["froid", True],
         [", et le thé aussi", False]]]
    long = "mot " * 100 + "Le café" + " suite" * 100
    parts = search.snippet(long, ("cafe",))
    assert parts[0][0].startswith("…") and parts[-1][0].endswith("…")
    assert ("café", True) in parts
    assert sum(len(t) for t, _ in parts) <= search.SNIPPET_CHARS + 2


def test_bad_queries_name_their_field() -> None:
    cases = [({}, "q"), ({"q": ""}, "q"), ({"q": "a" * 201}, "q"),
             ({"q": " ".join(f"w{i}" for i in range(9))}, "q"),
             ({"q": "x", "state": "nope"}, "state"), ({"q": "x", "from": "yesterday"}, "from"),
             ({"q": "x", "to": "2026-01-01T10:00"}, "to"),
             ({"q": "x", "limit": "0"}, "limit"), ({"q": "x", "limit": "101"}, "limit"),
             ({"q": "x", "before": "-1"}, "before"),
             ({"q": "x", "integration": "a\x00"}, "integration"),
             ({"q": "x", "integration": "i" * 33}, "integration")]
    for params, field in cases:
        with pytest.raises(FieldError) as exc:
            search.parse(params)
        assert exc.value.field == field, params


def test_the_migration_folds_as_the_domain_does() -> None:
    migration = importlib.import_module("connector.storage.migrations.versions.0005_search")
    assert (migration.FOLD_FROM, migration.FOLD_TO) == (search.FOLD_FROM, search.FOLD_TO)
    assert search.fold("Ça CRÈME Brûlée Noël") == "ca creme brulee noel"
