"""Alembic environment: runs migrations on the async engine of the settings."""

from __future__ import annotations

import asyncio
import concurrent.futures

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import connector.storage.models  # noqa: F401  (registers the tables)
from connector.storage.db import DatabaseUnavailable, sqlite_begin_immediate

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: sa.Connection) -> None:
    # Begun here, so alembic sees an outer transaction and commits nothing itself (on
    # SQLite it would commit after each migration, letting a concurrent upgrade that
    # read the version in between run the next migration a second time); the caller
    # commits once every migration ran.
    if not connection.in_transaction():
        connection.begin()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


#: The PostgreSQL advisory lock held around the whole upgrade: instances started at
#: the same moment on one database migrate one after the other, the later ones
#: finding the schema already at head.
MIGRATION_LOCK_KEY = 0x636F6E6E6563746F  # "connecto"


async def _run_async(url: str) -> None:
    sqlite = url.startswith("sqlite")
    engine = create_async_engine(url, poolclass=sa.pool.NullPool,
                                 connect_args={"timeout": 30} if sqlite else {})
    if sqlite:
        # One transaction, DDL included: SQLite's write lock serialises concurrent
        # upgrades; a later one waits on the busy timeout, then finds the schema at head.
        sqlite_begin_immediate(engine)
    try:
        try:
            connection = await engine.connect()
        except (OSError, sa.exc.DBAPIError) as exc:
            raise DatabaseUnavailable.from_error(url, exc) from None
        try:
            locked = connection.dialect.name == "postgresql"
            if locked:
                await connection.execute(sa.select(sa.func.pg_advisory_lock(MIGRATION_LOCK_KEY)))
                await connection.commit()
            await connection.run_sync(_run)
            await connection.commit()
            if locked:
                await connection.execute(
                    sa.select(sa.func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
                await connection.commit()
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def main() -> None:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async(url))
        return
    # Called from inside an event loop: run on a fresh loop in a worker thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _run_async(url)).result()


main()
