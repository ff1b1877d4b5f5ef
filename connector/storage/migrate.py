"""Schema migrations (Alembic), applied by `connector serve` and `connector migrate`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from connector.settings import Settings
from connector.storage.db import DatabaseUnavailable


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["database_url"] = settings.database_url
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to `revision`. Synchronous: call it outside an event loop.

    Safe to run from several processes at once (a PostgreSQL advisory lock, or
    SQLite's write lock, serialises them: see `migrations/env.py`). Raises
    `DatabaseUnavailable` when the database cannot be reached.
    """
    if settings.sqlite_path is not None:
        try:
            settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable.from_error(settings.database_url, exc) from None
    command.upgrade(alembic_config(settings), revision)
