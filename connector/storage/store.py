"""Transactions with after-commit effects.

Domain functions run inside a transaction and record what should happen once
the data is durable: stream events to publish, deliveries to send. Nothing is
published or sent for a transaction that rolled back.

Short writes are synchronous functions `fn(tx: SyncTx, ...)` run by
`Store.write` in one hop (see there); `Store.transaction()` gives an async
transaction for the rest, and `Tx.run` runs a synchronous function inside one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connector.realtime import stream
from connector.realtime.bus import EventBus
from connector.realtime.stream import Event

C = TypeVar("C", AsyncConnection, sa.Connection)
T = TypeVar("T")


@dataclass(slots=True)
class Transaction(Generic[C]):
    """A connection inside a transaction, and what to do once it has committed.

    `lease`: when set, a delivery created in this transaction may be leased to
    this process for that long and put in `handed`, to be sent after commit
    without a claim (see `outbox.enqueue`). Otherwise it is left to polling and
    `deliveries` wakes the poller.
    """

    conn: C
    events: list[Event] = field(default_factory=list)
    deliveries: bool = False
    lease: dt.timedelta | None = None
    handed: list[Any] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(SyncTx, *args)` inside this (async) transaction, sharing its effects."""
        assert isinstance(self.conn, AsyncConnection)

        def call(conn: sa.Connection) -> T:
            sync: SyncTx = Transaction(conn, self.events, lease=self.lease, handed=self.handed)
            result = fn(sync, *args)
            self.deliveries |= sync.deliveries
            return result

        return await self.conn.run_sync(call)


#: On an async connection: what routes and domain operations get.
Tx = Transaction[AsyncConnection]
#: On a synchronous connection: writes that run in one thread hop.
SyncTx = Transaction[sa.Connection]


class Store:
    """The engine, reached the right way.

    On SQLite one writer holds the database at a time and the others poll with
    growing sleeps (up to 100 ms each) in its busy handler, so a reply could
    wait behind several ingest batches plus the sleeps. Every write of this
    process therefore queues, first come first served, on `writing`; SQLite's
    busy timeout remains only for other processes (the CLI). On PostgreSQL,
    which has row locks, writers do not queue here.

    `sync_engine` (SQLite): the connection `write` uses, on a thread of its own.
    """

    def __init__(self, engine: AsyncEngine, bus: EventBus | None = None,
                 on_delivery: Callable[[], None] | None = None, *,
                 sync_engine: sa.Engine | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self.on_delivery = on_delivery
        #: Takes deliveries leased to this process in a transaction, after its commit.
        self.on_handoff: Callable[[list[Any]], None] | None = None
        self.handoff_lease: dt.timedelta | None = None
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._waiting = 0
        self._sync = sync_engine
        self._thread = ThreadPoolExecutor(1, "store-writer") if sync_engine else None

    def hand_deliveries_to(self, accept: Callable[[list[Any]], None], lease: float) -> None:
        """Deliveries created from now on are leased for `lease` s and passed to `accept`."""
        self.on_handoff = accept
        self.handoff_lease = dt.timedelta(seconds=lease)

    async def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold this process's turn to write (SQLite), or nothing (PostgreSQL)."""
        if self._write_lock is None:
            yield
            return
        self._waiting += 1
        try:
            await self._write_lock.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._write_lock.release()

    @property
    def writers_waiting(self) -> int:
        """Writers queued for the turn: a writer holding it for long should let them in."""
        return self._waiting

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction without after-commit effects."""
        async with self.writing(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.writing():
            async with self.engine.begin() as conn:
                tx: Tx = Transaction(conn, lease=self._lease())
                yield tx
                await stream.append(conn, tx.events)
        await self.after_commit(tx)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(SyncTx, *args)` in one write transaction; its result, once committed.

        One hop: on SQLite, to this store's writer thread and connection, in its
        turn on `writing` like every other writer of the process; elsewhere (or
        without a sync engine) through `run_sync` on the async engine. Stream
        events are appended in the same transaction; the after-commit effects run
        before this returns. A cancelled caller does not cut it short: the write
        and its effects complete (or roll back) as one.
        """
        return await asyncio.shield(self._write(fn, args))

    async def _write(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        lease = self._lease()
        if self._thread is not None:
            loop = asyncio.get_running_loop()
            async with self.writing():
                result, tx = await loop.run_in_executor(self._thread, self._in_thread, fn,
                                                        args, lease)
        else:
            async with self.writing(), self.engine.begin() as conn:
                result, tx = await conn.run_sync(_apply, fn, args, lease)
        await self.after_commit(tx)
        return result

    def _in_thread(self, fn: Callable[..., T], args: tuple[Any, ...],
                   lease: dt.timedelta | None) -> tuple[T, SyncTx]:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return _apply(conn, fn, args, lease)

    def _lease(self) -> dt.timedelta | None:
        return self.handoff_lease if self.on_handoff is not None else None

    async def after_commit(self, tx: Tx | SyncTx) -> None:
        if tx.handed and self.on_handoff is not None:
            self.on_handoff(tx.handed)
        await self.publish(tx.events)
        if tx.deliveries and self.on_delivery is not None:
            self.on_delivery()

    async def publish(self, events: list[Event]) -> None:
        """Send committed stream events to the live consoles (via the bus)."""
        if events and self.bus is not None:
            await self.bus.publish(events)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield await conn.execution_options(readonly=True)


def _apply(conn: sa.Connection, fn: Callable[..., T], args: tuple[Any, ...],
           lease: dt.timedelta | None) -> tuple[T, SyncTx]:
    tx: SyncTx = Transaction(conn, lease=lease)
    result = fn(tx, *args)
    stream.append_sync(conn, tx.events)
    return result, tx
