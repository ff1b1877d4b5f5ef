"""Reading the real database in tests, and running extra app instances."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from connector.app import create_app
from connector.domain import tickets
from connector.settings import Settings
from connector.storage.migrate import upgrade
from connector.storage.models import (
    Conversation,
    DedupeKey,
    Delivery,
    DeliveryAttempt,
    InboundEvent,
    Message,
    StreamEvent,
    Ticket,
    TicketTransition,
)
from connector.storage.store import Store

#: Debian's package, installed by scripts/install-test-deps.sh when missing.
REDIS_SERVER = Path("/usr/bin/redis-server")

#: The PostgreSQL server on every machine (trust auth); tests make a database each.
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"


async def postgres_admin(sql: str) -> None:
    """Run `sql` (CREATE/DROP DATABASE) on the server's `postgres` database."""
    engine = create_async_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(sql))
    finally:
        await engine.dispose()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test: its URL. Dropped afterwards."""
    name = f"connector_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


class Redis:
    """A real `redis-server` on a free loopback port, no persistence; stop and start
    again on the same port."""

    def __init__(self, tmp_path: Path) -> None:
        from tests.conftest import free_port

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Redis:
        self.proc = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return self
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not come up"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None


#: Tables an inbound webhook may write to.
DATA_TABLES = (InboundEvent, DedupeKey, Conversation, Message, Ticket, TicketTransition,
               Delivery, DeliveryAttempt, StreamEvent)


def store_of(where: Any) -> Store:
    """The store of an app, or the store itself."""
    return where if isinstance(where, Store) else where.state.store


async def rows(where: Any, model: Any, *criteria: Any, order: Any = None,
               ) -> list[dict[str, Any]]:
    """Rows of `model`'s table (in id order unless `order` is given) as dicts."""
    table = model.__table__
    query = sa.select(table).where(*criteria)
    if order is not None:
        query = query.order_by(order)
    elif "id" in table.c:
        query = query.order_by(table.c.id)
    async with store_of(where).read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def counts(where: Any) -> dict[str, int]:
    """How many rows each table an inbound event may touch holds."""
    out = {}
    async with store_of(where).read() as conn:
        for model in DATA_TABLES:
            table = model.__table__
            out[table.name] = (await conn.execute(
                sa.select(sa.func.count()).select_from(table))).scalar_one()
    return out


async def execute(where: Any, statement: Any) -> None:
    async with store_of(where).transaction() as tx:
        await tx.conn.execute(statement)


def actor(user: Any) -> tickets.Actor:
    return tickets.Actor(user.id, user.username, user.role)


async def ok(request: Awaitable[httpx.Response]) -> Any:
    """The JSON of a request's answer, which must be a success."""
    response = await request
    assert response.status_code < 300, response.text
    return response.json()


async def wait_until(check: Callable[[], Awaitable[Any]], within: float = 10.0,
                     what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (or fail after `within` seconds)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {result!r})")
        await anyio.sleep(0.02)


async def deliveries(where: Any, *criteria: Any) -> list[dict[str, Any]]:
    from connector.storage.models import Delivery

    return await rows(where, Delivery, *criteria)


async def wait_settled(where: Any, count: int | None = None, within: float = 10.0,
                       ) -> list[dict[str, Any]]:
    """Wait until every delivery (and at least `count`) is delivered or failed."""
    async def settled() -> list[dict[str, Any]] | None:
        found = await deliveries(where)
        done = all(d["state"] in ("delivered", "failed") for d in found)
        return found if done and len(found) >= (count or 0) else None

    return await wait_until(settled, within, "deliveries to settle")


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """Another app instance on `settings` (migrated first), with an in-process client."""
    await anyio.to_thread.run_sync(upgrade, settings)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield application, c


class Forwarder:
    """A TCP forwarder on a free loopback port to `target` (PostgreSQL, say): `cut()`
    drops every connection and refuses new ones, as a database going down would;
    `mend()` accepts again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        from tests.conftest import free_port

        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def mend(self) -> Forwarder:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        for s in [listener, *sockets]:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
