"""What every `connector` subcommand shares: the database, and one-line errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from connector.settings import Settings
from connector.storage.db import create_engine

T = TypeVar("T")


class CommandError(Exception):
    """A refusal the command prints as one `error: ...` line, exiting with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def migrate(settings: Settings) -> None:
    """Bring the schema up to date (`storage.migrate.upgrade`)."""
    from connector.storage.migrate import upgrade

    upgrade(settings)


def run_db(settings: Settings, work: Callable[[Any], Awaitable[T]], *,
           readonly: bool = False) -> T:
    """Migrate, then run `work(conn)` in one transaction on a fresh engine (`readonly`:
    a read, which on SQLite takes no write lock)."""
    migrate(settings)

    async def runner() -> T:
        engine = create_engine(settings)
        try:
            if readonly:
                async with engine.connect() as conn:
                    conn = await conn.execution_options(readonly=True)
                    async with conn.begin():
                        return await work(conn)
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(runner())


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
