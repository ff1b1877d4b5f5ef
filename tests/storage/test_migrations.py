"""The migration scripts: the modules they name exist, and they make the models' schema."""

from __future__ import annotations

import asyncio
import importlib
import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import connector.storage.migrate
import connector.storage.models  # the tables compared
from connector.storage.migrate import upgrade
from tests.conftest import make_settings
from tests.helpers import postgres_database

MIGRATIONS = Path(connector.storage.migrate.__file__).parent / "migrations"
SCRIPTS = [MIGRATIONS / "script.py.mako", *sorted((MIGRATIONS / "versions").glob("0*.py"))]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_connector_module_a_migration_imports_exists(script):
    modules = re.findall(r"^import (connector[\w.]*)$", script.read_text(), re.MULTILINE)
    assert modules, f"{script.name} imports no connector module (the column types live in one)"
    for module in modules:
        importlib.import_module(module)



#: Objects of the search migration (0005) that SQLAlchemy models cannot express, left out
#: of the comparison: SQLite's FTS5 table and its shadow tables (`message_fts*`; its
#: triggers are not reflected), PostgreSQL's generated tsvector column and its GIN index.
SEARCH_OBJECTS = {("column", "search_vector"), ("index", "ix_message_search")}


def not_search_index(obj: object, name: str | None, type_: str, reflected: bool,
                     compare_to: object) -> bool:
    if type_ == "table" and name is not None and name.startswith("message_fts"):
        return False
    return (type_, name) not in SEARCH_OBJECTS


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_migrated_schema_is_the_models_schema(tmp_path: Path, dialect: str):
    """Every table, column and index of `connector.storage.models` exactly as the
    migrations make it (alembic's autogenerate comparison finds nothing to add)."""
    def differences(url: str) -> list[object]:
        upgrade(make_settings(tmp_path, database_url=url))

        async def compare() -> list[object]:
            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    return await conn.run_sync(lambda c: list(compare_metadata(
                        MigrationContext.configure(c, opts={"include_object": not_search_index}),
                        SQLModel.metadata)))
            finally:
                await engine.dispose()

        return asyncio.run(compare())

    if dialect == "sqlite":
        assert differences(f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}") == []
    else:
        with postgres_database() as url:
            assert differences(url) == []
