"""The full-text vector of `message` on PostgreSQL (migration 0013): the faster expression
gives what the 0005 expression gave, for every text."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.anyio

_0005 = importlib.import_module("connector.storage.migrations.versions.0005_search")
_0013 = importlib.import_module("connector.storage.migrations.versions.0013_search_vector_fast")

#: ASCII, Latin-1, Latin Extended-A/B and IPA, Greek and Cyrillic, Latin Extended
#: Additional, and characters whose lower case leaves their block (Kelvin, Ohm, İ, Ÿ, ﬁ).
CODE_POINTS = [*range(1, 0x2B0), *range(0x370, 0x530), *range(0x1E00, 0x1F00),
               0x212A, 0x2126, 0x130, 0x178, 0xFB01]
#: Each character alone, and among ASCII, Latin-1 and other characters (so that every
#: branch of the expression is taken with it).
CONTEXTS = ["{}", "Café {} X", "cafe {}Z", "ÀÉ{}ǅ", "Straße-{}-ΣΊ", "{}{}"]
SENTENCES = ["Bonjour, ma commande n'est pas arrivée", "Votre commande est en cours",
             "ÇA CRÈME BRÛLÉE NOËL", "Ǆemal ĳssel Łódź", "naïve café", "e\u0301te\u0301",
             "ordre №42 — ½ prix", "Привет, мир", "日本語のテキスト", ""]


async def test_the_faster_vector_is_the_vector_of_0005(pg_engine: Any) -> None:
    texts = [c.format(chr(i), chr(i)) for i in CODE_POINTS for c in CONTEXTS] + SENTENCES
    query = sa.text(
        "SELECT text FROM unnest(CAST(:texts AS text[])) AS u(text) "  # noqa: S608
        f"WHERE ({_0005.PG_VECTOR}) IS DISTINCT FROM ({_0013.PG_VECTOR})")
    async with pg_engine.connect() as conn:
        assert (await conn.execute(query, {"texts": texts})).scalars().all() == []
        # The statement compared what it should: accented Latin text is folded.
        folded = (await conn.execute(sa.text(
            f"SELECT ({_0013.PG_VECTOR})::text FROM (SELECT 'Crème BRÛLÉE' AS text) t"),  # noqa: S608
        )).scalar_one()
    assert folded == "'brulee':2 'creme':1"


async def test_the_migrated_column_uses_the_faster_expression(pg_engine: Any) -> None:
    async with pg_engine.connect() as conn:
        expression = (await conn.execute(sa.text(
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
            "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
            "WHERE d.adrelid = 'message'::regclass AND a.attname = 'search_vector'"),
        )).scalar_one()
        indexed = (await conn.execute(sa.text(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_message_search'"),
        )).scalar_one()
    assert "octet_length" in expression and indexed == 1
