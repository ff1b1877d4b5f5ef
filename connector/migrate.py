"""Schema migrations (Alembic), applied by `connector serve` and `connector migrate`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from connector.db import ensure_sqlite_dir
from connector.settings import Settings


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["database_url"] = settings.database_url
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to `revision`. Synchronous: call it outside an event loop."""
    ensure_sqlite_dir(settings.database_url)
    command.upgrade(alembic_config(settings), revision)
