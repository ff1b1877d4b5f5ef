"""Ingest batches on held PostgreSQL connections (used by the writer process, `pg_child`).

Each batch runs as one synchronous function (`process.write_batch`) under
`run_sync` on a connection held from one batch to the next: no pool
checkout, pre-ping (three round trips on asyncpg) and reset per batch, and no
savepoints (a failed batch is rolled back and its events written again one
per transaction, as in the SQLite writer process). Batches written at once
each take a connection of their own; `pg_child` bounds how many.

A connection on which anything failed is closed, never reused, and the events
that got no answer are written once more on a new connection: a connection
that went stale while idle (the database restarted, a proxy dropped it) does
not cost requests their answer. What fails twice is answered as not stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connector.ingest.inbound import Inbound, Result
from connector.ingest.process import write_batch
from connector.realtime.stream import Event


class HeldConnections:
    """Connections kept open for ingest batches, one per batch in flight at most."""

    def __init__(self, engine: AsyncEngine, window: dt.timedelta) -> None:
        self.engine = engine
        self.window = window
        self._idle: list[AsyncConnection] = []

    async def write(self, batch: list[Inbound]) -> tuple[list[Result | None], list[Event]]:
        """Write `batch` (see the module): one result per event, None where it was not
        stored; the stream events of what was committed, in commit order."""
        results, events = await self._attempt(batch)
        missing = [n for n, r in enumerate(results) if r is None]
        if not missing:
            return results, events
        again, more = await self._attempt([batch[n] for n in missing])
        for n, result in zip(missing, again, strict=True):
            results[n] = result
        return results, events + more

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _attempt(self, batch: list[Inbound]) -> tuple[list[Result | None], list[Event]]:
        conn = self._idle.pop() if self._idle else await self.engine.connect()
        keep = False
        try:
            results, events = await conn.run_sync(_in_transactions, batch, self.window)
            keep = not conn.invalidated and all(r is not None for r in results)
            return results, events
        finally:
            if keep:
                self._idle.append(conn)
            else:
                with contextlib.suppress(Exception):
                    await conn.close()


def _in_transactions(conn: sa.Connection, batch: list[Inbound], window: dt.timedelta,
                     ) -> tuple[list[Result | None], list[Event]]:
    """`write_batch` with a transaction of its own for the batch (and for each event of a
    batch that failed)."""

    @contextlib.contextmanager
    def begin() -> Iterator[sa.Connection]:
        with conn.begin():
            yield conn

    return write_batch(begin, batch, window)
