"""The migration scripts and the template new ones are made from name modules that exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import connector.storage.migrate

MIGRATIONS = Path(connector.storage.migrate.__file__).parent / "migrations"
SCRIPTS = [MIGRATIONS / "script.py.mako", *sorted((MIGRATIONS / "versions").glob("0*.py"))]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_connector_module_a_migration_imports_exists(script):
    modules = re.findall(r"^import (connector[\w.]*)$", script.read_text(), re.MULTILINE)
    assert modules, f"{script.name} imports no connector module (the column types live in one)"
    for module in modules:
        importlib.import_module(module)
