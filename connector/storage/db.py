"""Database engine and the few dialect-aware helpers the domain needs.

The domain code speaks SQLAlchemy Core/ORM and stays dialect-neutral. The only
dialect-specific choices live here:

* SQLite runs in WAL mode with `synchronous=FULL` (a 2xx means the event is on
  disk) and every transaction starts with `BEGIN IMMEDIATE`, so two writers
  queue on `busy_timeout` instead of failing with "database is locked" when a
  read lock is upgraded. This also makes the CLI safe to use while the server
  runs.
* `dialect_insert` picks the dialect's `INSERT`, which has `ON CONFLICT`.

SQLite-only machinery that runs beside the engine lives in `storage.sqlite`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connector.settings import Settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stored as naive UTC on every dialect, returned timezone-aware.

    On SQLite the value is ISO 8601 text with a fixed six-digit fraction
    (`2026-11-21 06:13:28.000000`), so text order is time order, written and
    read by the C implementations of `isoformat`/`fromisoformat` rather than
    SQLAlchemy's generic SQLite DATETIME processing (a regular expression and
    string formatting in Python for every value).
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(26))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use connector.storage.db.utcnow()")
        naive = value.astimezone(dt.UTC).replace(tzinfo=None)
        if dialect.name == "sqlite":
            return naive.isoformat(" ", "microseconds")
        return naive

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)


def json_dumps(value: Any) -> str:
    """JSON for JSON columns (orjson: several times faster than the stdlib)."""
    return orjson.dumps(value).decode()


class DatabaseUnavailable(Exception):
    """The database cannot be reached: down, a wrong address, or a missing database.

    Its message is one line naming the problem and the URL without its password.
    """

    @classmethod
    def from_error(cls, url: str, exc: BaseException) -> DatabaseUnavailable:
        reason = getattr(exc, "orig", None) or exc  # the driver's words, not SQLAlchemy's
        where = sa.make_url(url).render_as_string(hide_password=True)
        text = " ".join(str(reason).split()) or type(reason).__name__
        return cls(f"cannot connect to the database {where}: {text}")


def unreachable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (down, restarting, a
    network fault, no free connection in time, SQLite busy past its timeout): worth
    retrying, nobody's bug. Checked along the exception's causes."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, (OSError, sa.exc.OperationalError, sa.exc.InterfaceError,
                             sa.exc.DisconnectionError, sa.exc.TimeoutError)):
            return True
        if isinstance(seen, sa.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if type(seen).__module__.startswith("asyncpg") and any(
                c.__name__ == "PostgresConnectionError" for c in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: A PostgreSQL server that does not answer (a black-holed address) fails a new
#: connection after this long, instead of asyncpg's 60 s.
CONNECT_TIMEOUT_SECONDS = 5


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        path = settings.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url,
            json_serializer=json_dumps,
            hide_parameters=True,  # errors must not print values (tokens, hashes) into logs
            connect_args={"timeout": 30},
            pool_size=8,
            max_overflow=8,
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(settings.database_url, pool_size=10, max_overflow=10,
                               pool_pre_ping=True, json_serializer=json_dumps,
                               hide_parameters=True,
                               connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})


def create_sync_engine(settings: Settings) -> sa.Engine:
    """A synchronous SQLite engine for batch writers that run in one thread hop.

    Same file, same pragmas, same `BEGIN IMMEDIATE` as the async engine.
    """
    assert settings.is_sqlite
    url = settings.database_url.replace("sqlite+aiosqlite:", "sqlite:", 1)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                              pool_size=1, max_overflow=0, json_serializer=json_dumps,
                              hide_parameters=True)
    _configure_sqlite(engine)
    return engine


def sqlite_begin_immediate(engine: AsyncEngine | sa.Engine) -> None:
    """Every transaction on `engine` starts with `BEGIN IMMEDIATE` (a `readonly`
    one with a plain `BEGIN`), DDL included: writers, and migrations run by several
    processes at once, queue on SQLite's write lock."""
    target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @sa.event.listens_for(target, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is DEFERRED, and
        # it leaves DDL outside the transaction).
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(target, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers (Store.read) need no write lock; WAL gives them a snapshot.
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _configure_sqlite(engine: AsyncEngine | sa.Engine) -> None:
    target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    sqlite_begin_immediate(engine)

    @sa.event.listens_for(target, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # 64 MiB page cache per connection: index pages of busy tables stay in memory.
        cur.execute("PRAGMA cache_size=-65536")
        # The server checkpoints from a thread of its own (`sqlite.checkpoint`); a commit
        # checkpoints itself only if the WAL grows past this (a safety net).
        cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cur.close()


#: WAL size (pages) at which a commit checkpoints by itself; SQLite's default is 1,000.
AUTOCHECKPOINT_PAGES = 10_000


def dialect_insert(table: sa.Table, dialect_name: str) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing` / `on_conflict_do_update`."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
