"""Transactions with after-commit effects.

Domain functions run inside `Store.transaction()` and record what should
happen once the data is durable: stream events to publish, deliveries to send.
Nothing is published or sent for a transaction that rolled back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connector import stream
from connector.bus import EventBus
from connector.stream import Event

C = TypeVar("C", AsyncConnection, sa.Connection)


@dataclass(slots=True)
class Transaction(Generic[C]):
    """A connection inside a transaction, and what to do once it has committed."""

    conn: C
    events: list[Event] = field(default_factory=list)
    deliveries: bool = False

    def emit(self, event: Event) -> None:
        self.events.append(event)

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name


#: On an async connection: what routes and domain operations get.
Tx = Transaction[AsyncConnection]
#: On a synchronous connection: batch writers that run in one thread hop.
SyncTx = Transaction[sa.Connection]


class Store:
    """The engine, reached the right way.

    On SQLite one writer holds the database at a time and the others poll with
    growing sleeps (up to 100 ms each) in its busy handler, so a reply could
    wait behind several ingest batches plus the sleeps. Every write of this
    process therefore queues, first come first served, on `writing`; SQLite's
    busy timeout remains only for other processes (the CLI). On PostgreSQL,
    which has row locks, writers do not queue here.
    """

    def __init__(self, engine: AsyncEngine, bus: EventBus | None = None,
                 on_delivery: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self.on_delivery = on_delivery
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold this process's turn to write (SQLite), or nothing (PostgreSQL)."""
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction without after-commit effects."""
        async with self.writing(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.writing():
            async with self.engine.begin() as conn:
                tx: Tx = Transaction(conn)
                yield tx
                await stream.append(conn, tx.events)
        await self.after_commit(tx)

    async def after_commit(self, tx: Tx | SyncTx) -> None:
        if tx.events and self.bus is not None:
            await self.bus.publish(tx.events)
        if tx.deliveries and self.on_delivery is not None:
            self.on_delivery()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield await conn.execution_options(readonly=True)
