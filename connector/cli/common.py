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


def run_db(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Migrate, then run `work(conn)` in one transaction on a fresh engine."""
    migrate(settings)

    async def runner() -> T:
        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(runner())


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
