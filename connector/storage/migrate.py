"""Schema migrations (Alembic), applied by `connector serve` and `connector migrate`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from connector.settings import Settings


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["database_url"] = settings.database_url
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to `revision`. Synchronous: call it outside an event loop."""
    if settings.sqlite_path is not None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)
