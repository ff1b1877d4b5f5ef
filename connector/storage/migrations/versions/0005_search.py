"""search: full-text indexes of message.text (issue 14)

SQLite: an FTS5 table over message.text (external content, tokenizer
`unicode61 remove_diacritics 2`), kept by triggers in the message's own transaction.
PostgreSQL: a stored generated tsvector column `message.search_vector` ('simple'
configuration over the text lower-cased, accent-folded with translate() and split on
every non-alphanumeric character, as FTS5 splits it) with a GIN index. No extension
is needed. Neither object is expressible in the SQLAlchemy models: the schema
comparison test leaves them out (tests/storage/test_migrations.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 18:40:00
"""

# ruff: noqa: F401  (connector.storage.db: every migration imports it, see test_migrations)
from __future__ import annotations

from alembic import op

import connector.storage.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

#: Accented Latin lower-case letters and their base letters (Latin-1, Extended-A/B and
#: Extended Additional whose NFD is one ASCII letter and combining marks); the same
#: table as connector.domain.search.FOLD_FROM/FOLD_TO (a test checks they agree).
FOLD_FROM = (
    'àáâãäåçèéêëìíîïñòóôõöùúûüýÿāăąćĉċčďēĕėęěĝğġģĥĩīĭįĵķĺļľńņňōŏő'
    'ŕŗřśŝşšţťũūŭůűųŵŷźżžơưǎǐǒǔǖǘǚǜǟǡǧǩǫǭǰǵǹǻȁȃȅȇȉȋȍȏȑȓȕȗșțȟȧȩȫȭȯ'
    'ȱȳḁḃḅḇḉḋḍḏḑḓḕḗḙḛḝḟḡḣḥḧḩḫḭḯḱḳḵḷḹḻḽḿṁṃṅṇṉṋṍṏṑṓṕṗṙṛṝṟṡṣṥṧṩṫṭṯṱṳ'
    'ṵṷṹṻṽṿẁẃẅẇẉẋẍẏẑẓẕẖẗẘẙạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừử'
    'ữựỳỵỷỹ'
)
FOLD_TO = (
    'aaaaaaceeeeiiiinooooouuuuyyaaaccccdeeeeegggghiiiijklllnnnooo'
    'rrrssssttuuuuuuwyzzzouaiouuuuuaagkoojgnaaaeeiioorruusthaeooo'
    'oyabbbcdddddeeeeefghhhhhiikkkllllmmmnnnnoooopprrrrsssssttttu'
    'uuuuvvwwwwwxxyzzzhtwyaaaaaaaaaaaaeeeeeeeeiioooooooooooouuuuu'
    'uuyyyy'
)

#: The expression indexed on PostgreSQL; connector.domain.search queries the column.
PG_VECTOR = (
    "to_tsvector('simple'::regconfig, regexp_replace("
    f"translate(lower(text), '{FOLD_FROM}', '{FOLD_TO}'), '[^[:alnum:]]+', ' ', 'g'))")

_SQLITE_UP = [
    "CREATE VIRTUAL TABLE message_fts USING fts5(text, content='message', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER message_fts_ai AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER message_fts_ad AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "END",
    "CREATE TRIGGER message_fts_au AFTER UPDATE OF text ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS message_fts_au",
    "DROP TRIGGER IF EXISTS message_fts_ad",
    "DROP TRIGGER IF EXISTS message_fts_ai",
    "DROP TABLE IF EXISTS message_fts",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("ALTER TABLE message ADD COLUMN search_vector tsvector "
                   f"GENERATED ALWAYS AS ({PG_VECTOR}) STORED")
        op.execute("CREATE INDEX ix_message_search ON message USING gin (search_vector)")
    else:
        raise NotImplementedError(f"no full-text index for the {dialect} dialect")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_message_search")
        op.execute("ALTER TABLE message DROP COLUMN IF EXISTS search_vector")
