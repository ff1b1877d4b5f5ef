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
    """`Writer.execute`/`update` with the ingest writer's own statements: the plain SQLite text
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
            w.update(apply._SEQ, [(7, "fr", "web", w.stamp(now), conv_ids[0])])
            results[make] = (tickets, stored(conn, Conversation.__table__, "id"))
    assert results[Writer] == results[core]
    tickets, convs = results[Writer]
    assert tickets == {1: {"id": 1, "state": "waiting", "assignee_id": None},
                       2: {"id": 2, "state": "assigned", "assignee_id": None}}
    assert convs[0][3:7] == (7, None, "fr", "web")


# --- PostgreSQL: one array per column ---------------------------------------------------------

def on_core(conn: sa.Connection) -> Writer:
    """A PostgreSQL writer forced onto the SQLAlchemy Core path."""
    writer = Writer(conn)
    writer.arrays = False
    return writer


@pytest.mark.anyio
async def test_arrays_store_and_return_what_core_does_on_postgresql(pg_engine: Any) -> None:
    from connector.ingest import apply

    now = utcnow()
    later = now + dt.timedelta(minutes=5)

    def write(conn: sa.Connection, make: Any, first: int) -> Any:
        w = make(conn)
        assert w.arrays is (make is Writer)
        w.run(EVENTS, event_rows(w, first, now))
        users = [f"{first}-a", f"{first}-b"]
        convs = w.run(apply._CONVERSATIONS, [("i1", u, 0, w.stamp(now), w.stamp(now))
                                             for u in users])
        ids = sorted(r[0] for r in convs)
        conn.execute(sa.update(Conversation.__table__).where(
            Conversation.__table__.c.id == ids[0]).values(survey_until=later))
        again = w.run(apply._CONVERSATIONS, [("i1", u, 0, w.stamp(now), w.stamp(now))
                                             for u in users])
        w.update(apply._SEQ, [(7, "fr", None, w.stamp(later), ids[0]),
                              (2, None, "web", w.stamp(now), ids[1])])
        msgs = w.run(apply._MESSAGES, [
            (ids[0], 8, None, "user", None, "é\ufffd", w.json({"b": [1, None]}), w.json(None),
             None, w.stamp(now))])
        # (last_seq, open_ticket_id, lang, platform, survey_ticket_id, survey_until), by id
        return [r[3:] for r in sorted(again)], [r[2:] for r in msgs]

    results = {}
    for make, first in ((Writer, 1), (on_core, 11)):
        async with pg_engine.begin() as conn:
            results[make] = await conn.run_sync(write, make, first)
    assert results[Writer] == results[on_core]
    returned, msgs = results[Writer]
    # RETURNING as Core gives it: timestamps aware, in UTC.
    assert [r[-1] for r in returned] == [later, None]
    assert msgs == [(8,)]
    async with pg_engine.connect() as conn:
        events = (await conn.execute(sa.select(_events).order_by(_events.c.id))).all()
        convs = (await conn.execute(sa.select(Conversation.__table__).order_by(
            Conversation.__table__.c.id))).all()
        bodies = (await conn.execute(sa.select(Message.__table__.c.body,
                                               Message.__table__.c.context))).all()
    assert [tuple(r)[1:] for r in events[:3]] == [tuple(r)[1:] for r in events[3:]]
    assert events[0].user_ids is None and events[1].user_ids == [3, 4]
    assert events[0].created_at == now
    assert [(c.last_seq, c.lang, c.platform, c.updated_at) for c in convs] == [
        (7, "fr", None, later), (2, None, "web", now)] * 2
    assert [tuple(b) for b in bodies] == [({"b": [1, None]}, None)] * 2


@pytest.mark.anyio
async def test_dedupe_upsert_returns_only_rows_it_wrote_on_postgresql(pg_engine: Any) -> None:
    now = utcnow()
    old = now - dt.timedelta(hours=2)
    for make in (Writer, on_core):
        def write(conn: sa.Connection, make: Any = make) -> Any:
            conn.execute(sa.delete(_dedupe))
            w = make(conn)
            w.run(DEDUPE, [("i1", "recent", w.stamp(now)), ("i1", "stale", w.stamp(old))])
            return w.run(DEDUPE, [("i1", "recent", w.stamp(now)), ("i1", "stale", w.stamp(now)),
                                  ("i1", "new", w.stamp(now))], where=now - dt.timedelta(hours=1))

        async with pg_engine.begin() as conn:
            assert sorted(await conn.run_sync(write)) == [("i1", "new"), ("i1", "stale")], make


@pytest.mark.anyio
async def test_array_statements_fail_as_core_does_on_postgresql(pg_engine: Any) -> None:
    """A constraint violation is SQLAlchemy's IntegrityError; a value too long for its
    column is refused, never cut to fit by the array's cast."""
    now = utcnow()

    def same_id_twice(conn: sa.Connection) -> Any:
        w = Writer(conn)
        return w.run(EVENTS, [(1, *r[1:]) for r in event_rows(w, 1, now)[:2]])

    def too_long(conn: sa.Connection) -> Any:
        w = Writer(conn)
        return w.run(DEDUPE, [("i1", "f" * 65, w.stamp(now))], where=now)

    for write, error in ((same_id_twice, sa.exc.IntegrityError), (too_long, sa.exc.DBAPIError)):
        with pytest.raises(error):
            async with pg_engine.begin() as conn:
                await conn.run_sync(write)
    async with pg_engine.connect() as conn:
        for table in (_dedupe, _events):
            assert (await conn.execute(sa.select(sa.func.count()).select_from(table))
                    ).scalar() == 0
