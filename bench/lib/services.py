"""The backing services of a cluster run: a fresh PostgreSQL database and a redis-server.

`postgres_database()` creates a database with a unique name on a PostgreSQL
server (trust auth, as on the test machines) and drops it at the end;
`start_redis(st)` starts a `redis-server` of the run's own on a free loopback
port, as one of the stack's servers (stopped with it), and points the stack's
processes at it (`CONNECTOR_BUS_URL`). `scalar(database, sql, ...)` and `rows(...)`
read a SQLite file or a PostgreSQL database alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import sqlite3
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import Server, free_port
from .stack import Stack

#: The PostgreSQL server of the test machines (trust auth), as CONNECTOR_DATABASE_URL spells it.
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def _plain(url: str) -> str:
    """An SQLAlchemy URL as asyncpg takes it (no `+asyncpg`)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(_plain(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@dataclass(frozen=True)
class PgDatabase:
    server: str  # the server's URL, without a database
    name: str

    @property
    def url(self) -> str:
        """CONNECTOR_DATABASE_URL for this database."""
        return f"{self.server}/{self.name}"

    def backend_pids(self) -> list[int]:
        """The server processes connected to this database right now (for `CpuMeter`)."""
        rows = asyncio.run(_pg(f"{self.server}/postgres",
                               "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.name))
        return [int(r["pid"]) for r in rows]


@contextlib.contextmanager
def postgres_database(server: str = POSTGRES, prefix: str = "bench_") -> Iterator[PgDatabase]:
    """A fresh database named `<prefix><random>` on `server`; dropped (WITH FORCE) at the end."""
    db = PgDatabase(server, f"{prefix}{uuid.uuid4().hex[:12]}")
    admin = f"{server}/postgres"
    asyncio.run(_pg(admin, f'CREATE DATABASE "{db.name}"'))
    try:
        yield db
    finally:
        asyncio.run(_pg(admin, f'DROP DATABASE "{db.name}" WITH (FORCE)'))


def start_redis(st: Stack, timeout: float = 15.0) -> Server:
    """A redis-server of this run's own (no persistence) on a free loopback port.

    Started as one of `st`'s servers, so it is stopped with the stack (after
    the servers started later). Sets `CONNECTOR_BUS_URL` in `st.env` for the
    processes started from now on.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found (Debian: apt-get install redis-server)")
    port = free_port()
    server = st.spawn("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(st.tmp)], port)
    deadline = time.monotonic() + timeout
    while not _pong(port):
        st.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"redis-server not answering on port {port} after {timeout} s")
        time.sleep(0.05)
    st.env["CONNECTOR_BUS_URL"] = f"redis://127.0.0.1:{port}/0"
    return server


def _pong(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                 timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


def bus_status(server: Server) -> str:
    """What a connector's /readyz says of its bus: ok, down or memory."""
    with urllib.request.urlopen(server.url("/readyz"), timeout=5) as resp:  # noqa: S310
        return str(json.loads(resp.read())["bus"])


def scalar(database: Path | str, sql: str, *args: Any) -> Any:
    """The first column of the first row of `sql` on `database`: a SQLite file (opened
    read-only) or a PostgreSQL URL. Parameters are written `$1`, `$2`... (asyncpg's
    style; SQLite reads them as `?1`, `?2`...)."""
    return rows(database, sql, *args)[0][0]


def rows(database: Path | str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Every row of `sql` on `database`, as `scalar` reads it. Values come as each driver
    gives them: a SQLite timestamp is the connector's text, a PostgreSQL one a datetime."""
    if isinstance(database, str):
        return [tuple(r) for r in asyncio.run(_pg(database, sql, *args))]
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql.replace("$", "?"), args).fetchall()
    finally:
        conn.close()
