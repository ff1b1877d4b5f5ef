"""search: the same message.search_vector, computed faster on PostgreSQL

The generated column of 0005 runs translate() with the whole fold table over
every message: PostgreSQL's translate() scans that table (246 characters) once
per character of the text, about 60-100 µs of the database's CPU per message,
the largest part of its cost per ingested event. The expression now takes
translate() only where it can change something:

* a text that is all ASCII (as many bytes as characters) is only lower-cased:
  lower() of ASCII is ASCII, and no ASCII character is in the fold table;
* a lower-cased text whose characters are all Latin-1 is translated with the
  Latin-1 part of the table (27 characters): no other character of the table
  can occur in it;
* any other text with the whole table, as before.

Each branch gives exactly what the 0005 expression gives (tests/storage/
test_search_vector.py compares both over every character of the Latin blocks
and samples of others, in several contexts). SQLite: nothing changes.

On PostgreSQL the column is dropped and added again: the table `message` is
rewritten and its full-text index rebuilt, in time proportional to its size
(docs/operations.md, "Upgrading").

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 05:00:00
"""

# ruff: noqa: F401  (connector.storage.db: every migration imports it, see test_migrations)
from __future__ import annotations

import importlib

from alembic import op

import connector.storage.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_0005 = importlib.import_module("connector.storage.migrations.versions.0005_search")

#: The fold table's Latin-1 part (U+0080-U+00FF).
LATIN1_FROM = "".join(c for c in _0005.FOLD_FROM if ord(c) <= 0xFF)
LATIN1_TO = "".join(t for c, t in zip(_0005.FOLD_FROM, _0005.FOLD_TO, strict=True)
                    if ord(c) <= 0xFF)

#: The expression indexed on PostgreSQL from this revision on (see the module docstring).
PG_VECTOR = (
    "to_tsvector('simple'::regconfig, regexp_replace(CASE "
    "WHEN octet_length(text) = char_length(text) THEN lower(text) "
    "WHEN lower(text) ~ '^[\\x01-\\xff]*$' "
    f"THEN translate(lower(text), '{LATIN1_FROM}', '{LATIN1_TO}') "
    f"ELSE translate(lower(text), '{_0005.FOLD_FROM}', '{_0005.FOLD_TO}') END, "
    "'[^[:alnum:]]+', ' ', 'g'))")


def _vector(expression: str) -> None:
    op.execute("ALTER TABLE message DROP COLUMN search_vector")  # and its index
    op.execute("ALTER TABLE message ADD COLUMN search_vector tsvector "
               f"GENERATED ALWAYS AS ({expression}) STORED")
    op.execute("CREATE INDEX ix_message_search ON message USING gin (search_vector)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _vector(PG_VECTOR)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _vector(_0005.PG_VECTOR)
