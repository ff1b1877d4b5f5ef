"""The stored live stream: every event gets a cursor and a row before it is sent.

`append` runs inside the caller's transaction. Cursors come from the `stream`
counter row, incremented with `UPDATE ... RETURNING`: the row lock is held
until commit, so cursors are handed out in commit order and a reader never
sees cursor N+1 committed while N is still pending. On PostgreSQL (asyncpg)
the counter's update and the events' insert are one statement (`_APPEND_PG`,
a data-modifying CTE): one round trip fewer for every transaction that emits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain.roles import STAFF
from connector.storage.bulk import Bulk, Writer, arrays, pg_unnest
from connector.storage.db import utcnow
from connector.storage.models import Counter, StreamEvent

_events = StreamEvent.__table__
_counter = Counter.__table__

_ADVANCE = (sa.update(_counter).where(_counter.c.name == "stream")
            .values(value=_counter.c.value + sa.bindparam("n")).returning(_counter.c.value))
_ADVANCE_SQLITE = "UPDATE counter SET value = value + ? WHERE name = 'stream' RETURNING value"
_INSERT = Bulk(_events, ("id", "type", "ticket_id", "public", "user_ids", "payload",
                         "created_at"))


def _append_pg() -> tuple[str, list[Any]]:
    """PostgreSQL: advance the counter by `$1` and insert the events (the other parameters,
    one array per column), their cursors numbered in array order; returns their ids."""
    columns = _INSERT.columns[1:]
    unnest, to_driver = pg_unnest(_events, columns, 2)
    names = ", ".join(columns)
    # Names come from the table definitions, values are all parameters: nothing from input.
    sql = ("WITH c AS (UPDATE counter SET value = value + $1::bigint WHERE name = 'stream' "  # noqa: S608
           f"RETURNING value) INSERT INTO {_events.name} (id, {names}) "
           f"SELECT c.value - $1::bigint + u.n, {', '.join('u.' + c for c in columns)} "
           f"FROM c, {unnest} WITH ORDINALITY AS u({names}, n) RETURNING id")
    return sql, to_driver


_APPEND_PG = _append_pg()


@dataclass(slots=True)
class Event:
    """A stream event (built by `connector.domain.events`). Read it through `frame()` /
    `text()`: one that arrived rendered (`rendered`, from the ingest writer process) has
    its frame only, no `payload`."""

    type: str
    payload: dict[str, Any]
    ticket_id: int | None = None
    public: bool = False
    user_ids: list[int] = field(default_factory=list)
    cursor: int = 0
    created_at: dt.datetime | None = None
    _text: str | None = None

    def visible_to(self, user_id: int, role: str) -> bool:
        """Staff receive every event; others the public ones and those naming them."""
        return role in STAFF or self.public or user_id in self.user_ids

    @classmethod
    def rendered(cls, text: str, type: str, ticket_id: int | None, public: bool,
                 user_ids: list[int], cursor: int) -> Event:
        """An event already stored and serialised elsewhere (the frame's JSON as `text`)."""
        return cls(type, {}, ticket_id, public, user_ids, cursor, _text=text)

    def frame(self) -> dict[str, Any]:
        if self._text is not None and not self.payload:
            return orjson.loads(self._text)  # type: ignore[no-any-return]
        return {"type": self.type, "cursor": self.cursor, **self.payload}

    def text(self) -> str:
        """The frame as JSON, serialised once however many consoles receive it."""
        if self._text is None:
            self._text = orjson.dumps(self.frame()).decode()
        return self._text


def append_sync(conn: sa.Connection, events: list[Event]) -> list[Event]:
    """Store `events` with consecutive cursors in the caller's transaction."""
    if not events:
        return events
    bulk = Writer(conn)
    now = utcnow()
    stamp = bulk.stamp(now)
    rows = [(event.type, event.ticket_id, event.public, bulk.json(event.user_ids or None),
             bulk.json(event.payload), stamp) for event in events]
    if bulk.arrays:
        sql, to_driver = _APPEND_PG
        ids = bulk.run_postgresql(sql, [len(events), *arrays(to_driver, rows)], (None,))
        if len(ids) != len(events):
            raise RuntimeError("the stream counter row is missing")
        last = max(i for (i,) in ids)
    else:
        ((last,),) = bulk.execute(_ADVANCE, {"n": len(events)}, _ADVANCE_SQLITE,
                                  (len(events),))
    first = last - len(events) + 1
    for offset, event in enumerate(events):
        event.cursor = first + offset
        event.created_at = now
    if not bulk.arrays:
        bulk.run(_INSERT, [(event.cursor, *row) for event, row in zip(events, rows,
                                                                      strict=True)])
    return events


async def append(conn: AsyncConnection, events: list[Event]) -> list[Event]:
    if not events:
        return events
    return await conn.run_sync(append_sync, events)


async def read_after(conn: AsyncConnection, cursor: int, limit: int = 500) -> list[Event]:
    rows = (
        await conn.execute(
            sa.select(_events).where(_events.c.id > cursor).order_by(_events.c.id).limit(limit)
        )
    ).all()
    return [_from_row(r) for r in rows]


async def oldest_kept(conn: AsyncConnection) -> int | None:
    return (await conn.execute(sa.select(sa.func.min(_events.c.id)))).scalar()


async def last_cursor(conn: AsyncConnection) -> int:
    return (
        await conn.execute(sa.select(_counter.c.value).where(_counter.c.name == "stream"))
    ).scalar_one()


async def prune(conn: AsyncConnection, older_than: dt.datetime) -> int:
    result = await conn.execute(sa.delete(_events).where(_events.c.created_at < older_than))
    return result.rowcount or 0


def _from_row(row: Any) -> Event:
    return Event(
        type=row.type, payload=row.payload, ticket_id=row.ticket_id, public=row.public,
        user_ids=list(row.user_ids or []), cursor=row.id, created_at=row.created_at,
    )
