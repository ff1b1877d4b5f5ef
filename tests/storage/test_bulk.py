"""`connector.storage.bulk`: SQLite's plain-SQL path stores exactly what SQLAlchemy Core stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connector.storage.bulk import CHUNK, Bulk, Writer
from connector.storage.db import create_engine, create_sync_engine, utcnow
from connector.storage.models import Conversation, DedupeKey, Integration, Message, StreamEvent
from tests.conftest import fresh_database, make_settings

_dedupe = DedupeKey.__table__
_events = StreamEvent.__table__

EVENTS = Bulk(_events, ("id", "type", "ticket_id", "public", "user_ids", "payload", "created_at"))
DEDUPE = Bulk(_dedupe, ("integration_id", "fingerprint", "seen_at"),
              returning=("integration_id", "fingerprint"),
              on_conflict=("integration_id", "fingerprint"), update=("seen_at",),
              update_where="seen_at", where_param="cutoff")


@pytest.fixture
def engine(migrated_db: Path, tmp_path: Path) -> Any:
    fresh_database(migrated_db, tmp_path)
    engine = create_sync_engine(make_settings(tmp_path))
    yield engine
    engine.dispose()


def core(conn: sa.Connection) -> Writer:
    """The same writer forced onto the SQLAlchemy Core path (what PostgreSQL uses)."""
    writer = Writer(conn)
    writer.raw = False
    return writer


def stored(conn: sa.Connection, table: sa.Table, order: str) -> list[tuple[Any, ...]]:
    """Rows exactly as SQLite holds them (no result processing)."""
    return [tuple(r) for r in conn.exec_driver_sql(
        f"SELECT * FROM {table.name} ORDER BY {order}")]  # noqa: S608 - test table names


def event_rows(w: Writer, first: int, now: dt.datetime) -> list[tuple[Any, ...]]:
    payloads: list[Any] = [{"text": "é <b>x</b>", "n": 1.5}, {"nested": [None, True]}, {}]
    return [(first + i, "message.created", i or None, i % 2 == 0,
             w.json([3, 4] if i else None), w.json(p), w.stamp(now))
            for i, p in enumerate(payloads)]


def test_plain_sql_stores_what_core_stores(engine: Any) -> None:
    now = utcnow()
    with engine.begin() as conn:
        w = Writer(conn)
        assert w.raw
        w.run(EVENTS, event_rows(w, 1, now))
        c = core(conn)
        c.run(EVENTS, event_rows(c, 11, now))
        rows = stored(conn, _events, "id")
    plain, via_core = rows[:3], rows[3:]
    assert [r[1:] for r in plain] == [r[1:] for r in via_core]
    # Same read-back through SQLAlchemy types as well.
    with engine.connect() as conn:
        typed = conn.execute(sa.select(_events).order_by(_events.c.id)).all()
    assert [tuple(r)[1:] for r in typed[:3]] == [tuple(r)[1:] for r in typed[3:]]
    assert typed[0].user_ids is None and typed[1].user_ids == [3, 4]
    assert typed[0].created_at == now


def test_upsert_returns_only_rows_it_wrote_on_both_paths(engine: Any) -> None:
    now = utcnow()
    old = now - dt.timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(sa.insert(Integration.__table__).values(
            id="i1", name="b", channel_url="http://x", verify_token="t", key_hash="h",
            created_at=now))
    for make in (Writer, core):
        with engine.begin() as conn:
            conn.execute(sa.delete(_dedupe))
            w = make(conn)
            w.run(DEDUPE, [("i1", "recent", w.stamp(now)), ("i1", "stale", w.stamp(old))])
            back = w.run(DEDUPE, [("i1", "recent", w.stamp(now)), ("i1", "stale", w.stamp(now)),
                                  ("i1", "new", w.stamp(now))], where=now - dt.timedelta(hours=1))
            assert sorted(back) == [("i1", "new"), ("i1", "stale")], make


def test_many_rows_are_split_into_statements(engine: Any) -> None:
    now = utcnow()
    with engine.begin() as conn:
        w = Writer(conn)
        rows = [(i, "presence", None, True, w.json(None), w.json({"i": i}), w.stamp(now))
                for i in range(1, CHUNK * 2 + 7)]
        w.run(EVENTS, rows)
        assert conn.exec_driver_sql("SELECT count(*), max(id) FROM stream_event").one() \
            == (CHUNK * 2 + 6, CHUNK * 2 + 6)


def test_returning_rows_are_matched_by_key(engine: Any) -> None:
    """Rows come back as plain tuples in `returning` order, one per inserted row."""
    now = utcnow()
    conv = Bulk(Conversation.__table__, ("integration_id", "end_user_id", "last_seq",
                                          "created_at", "updated_at"),
                returning=("id", "integration_id", "end_user_id", "last_seq"),
                on_conflict=("integration_id", "end_user_id"), update=("updated_at",))
    msg = Bulk(Message.__table__, ("conversation_id", "seq", "kind", "text", "body",
                                   "context", "created_at"), returning=("id", "seq"))
    with engine.begin() as conn:
        conn.execute(sa.insert(Integration.__table__).values(
            id="i1", name="b", channel_url="http://x", verify_token="t", key_hash="h",
            created_at=now))
        w = Writer(conn)
        first = w.run(conv, [("i1", u, 0, w.stamp(now), w.stamp(now)) for u in ("a", "b")])
        again = w.run(conv, [("i1", u, 0, w.stamp(now), w.stamp(now)) for u in ("b", "c")])
        ids = {r[2]: r[0] for r in first}
        assert {r[2]: r[0] for r in again}["b"] == ids["b"]  # an upsert returns existing rows
        back = w.run(msg, [(ids["a"], s, "user", f"t{s}", w.json(None), w.json({"s": s}),
                            w.stamp(now)) for s in (1, 2, 3)])
        assert sorted(r[1] for r in back) == [1, 2, 3]
        texts = dict(conn.exec_driver_sql("SELECT id, text FROM message").all())
        assert {texts[r[0]] for r in back} == {"t1", "t2", "t3"}


@pytest.mark.anyio
async def test_works_under_run_sync_on_the_async_engine(migrated_db: Path, tmp_path: Path) -> None:
    """Async transactions append stream events through the aiosqlite adapter's cursor."""
    fresh_database(migrated_db, tmp_path)
    engine = create_engine(make_settings(tmp_path))
    now = utcnow()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: Writer(c).run(EVENTS, event_rows(Writer(c), 1, now)))
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT count(*) FROM stream_event")).scalar() == 3
    finally:
        await engine.dispose()


def test_single_statements_agree_on_both_paths(engine: Any) -> None:
    """`Writer.execute` with the ingest writer's own statements: the plain SQLite text
    and the Core statement read and write the same (the stream counter, the open
    tickets' audience, the conversations' sequence update)."""
    from connector.domain import roles
    from connector.ingest import apply
    from connector.realtime import stream

    now = utcnow()
    with engine.begin() as conn:
        conn.execute(sa.insert(Integration.__table__).values(
            id="i1", name="b", channel_url="http://x", verify_token="t", key_hash="h",
            created_at=now))
        conv_ids = [conn.execute(sa.insert(Conversation.__table__).values(
            integration_id="i1", end_user_id=u, created_at=now, updated_at=now),
        ).inserted_primary_key[0] for u in ("a", "b")]
        for state, cid in (("waiting", conv_ids[0]), ("assigned", conv_ids[1])):
            conn.exec_driver_sql(
                "INSERT INTO ticket (conversation_id, integration_id, state, reason, opened_at, "
                "version) VALUES (?, 'i1', ?, 'need_help', '2026-01-01 00:00:00.000000', 1)",
                (cid, state))
    results = {}
    for make in (Writer, core):
        with engine.begin() as conn:
            w = make(conn)
            before = conn.exec_driver_sql("SELECT value FROM counter WHERE name = 'stream'"
                                          ).scalar_one()
            ((after,),) = w.execute(stream._ADVANCE, {"n": 3}, stream._ADVANCE_SQLITE, (3,))
            assert after == before + 3
            tickets = roles.audience_tickets(w, {1, 2, 999})
            w.execute(apply._SEQ, [{"seq": 7, "lang": "fr", "platform": "web",
                                           "now": now, "cid": conv_ids[0]}],
                      apply._SEQ_SQLITE, [(7, "fr", "web", w.stamp(now), conv_ids[0])])
            results[make] = (tickets, stored(conn, Conversation.__table__, "id"))
    assert results[Writer] == results[core]
    tickets, convs = results[Writer]
    assert tickets == {1: {"id": 1, "state": "waiting", "assignee_id": None},
                       2: {"id": 2, "state": "assigned", "assignee_id": None}}
    assert convs[0][3:7] == (7, None, "fr", "web")
