"""Full-text search over the messages a user may read, on the database's own indexes.

Words match whatever their case and accents (`cafe` finds `café`): text is split into
words on every character that is not a letter or a digit, lower-cased and folded
(`fold`). The indexes (migration 0005) are kept by the database in the message's own
transaction: SQLite's FTS5 table `message_fts` (tokenizer `unicode61
remove_diacritics 2`) and PostgreSQL's generated column `message.search_vector`
('simple' configuration over the same folding, GIN index). A query is its words, all
required (AND), each passed as a quoted term (FTS5) or a plain lexeme (tsquery), so no
query syntax typed by a user reaches either engine.

Results are newest first (message id descending), paged by a cursor: `before`, the
last id of the previous page (`next_before` of the answer, null on the last page).
Visibility is `roles.can_see_sql` on the message's ticket, as in
`reports.readable_messages`: staff read everything; an agent reads the messages of the
tickets they may see, and the bot's history (messages of no ticket) of a conversation
with a ticket they may see. Kinds searched: user, bot, agent and note (notes are read
by whoever may read the ticket); system lines are not.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain import labels, tickets
from connector.domain.errors import FieldError
from connector.domain.roles import Actor, can_see_sql
from connector.storage.models import Message, Ticket, TicketLabel

_m = Message.__table__  # type: ignore[attr-defined]
_t = Ticket.__table__  # type: ignore[attr-defined]
_tl = TicketLabel.__table__

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
KINDS = ("user", "bot", "agent", "note")
#: Characters of a snippet, about; the text around the first matched word.
SNIPPET_CHARS = 160

#: Accented Latin lower-case letters and their base letters: the same table as the
#: PostgreSQL index's translate() (migration 0005; a test checks they agree).
FOLD_FROM, FOLD_TO = "", ""
for _cp in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
    _c = chr(_cp)
    _base = "".join(ch for ch in unicodedata.normalize("NFD", _c) if not unicodedata.combining(ch))
    if _c == _c.lower() and len(_base) == 1 and _base != _c and _base.isascii():
        FOLD_FROM, FOLD_TO = FOLD_FROM + _c, FOLD_TO + _base
_FOLD = str.maketrans(FOLD_FROM, FOLD_TO)
#: A word: letters and digits (no underscore), as FTS5's unicode61 and the PostgreSQL
#: index (every non-alphanumeric character a separator) split text.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower-cased, accents of Latin letters removed (as both indexes fold)."""
    return text.lower().translate(_FOLD)


def terms_of(text: str) -> list[str]:
    """The distinct folded words of `text`, in order."""
    return list(dict.fromkeys(fold(w) for w in _WORD.findall(text)))


@dataclass(frozen=True)
class Query:
    terms: tuple[str, ...]
    state: str | None = None
    integration: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    limit: int = DEFAULT_LIMIT
    before: int | None = None
    label: str | None = None


def _when(field: str, raw: str | None, end: bool) -> dt.datetime | None:
    """A UTC date, included: the start of the day for `from`, of the next day for `to`
    (an exclusive end)."""
    if raw is None or raw == "":
        return None
    try:
        day = dt.date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise FieldError(field, "must be a date (YYYY-MM-DD)")
    if end:
        day = day + dt.timedelta(days=1) if day < dt.date.max else day
    return dt.datetime.combine(day, dt.time.min, dt.UTC)


def _int(field: str, raw: str | None, default: int | None, lo: int, hi: int) -> int | None:
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not lo <= int(raw) <= hi:
        raise FieldError(field, f"must be an integer from {lo} to {hi}")
    return int(raw)


def parse(params: dict[str, str | None]) -> Query:
    """The query of the request's parameters, or `FieldError` naming the one at fault:
    `q` (missing or empty, over `MAX_QUERY_CHARS`, over `MAX_TERMS` words), `state`,
    `integration`, `from`, `to` (UTC dates), `limit` (1 to `MAX_LIMIT`), `before` (a
    message id), `label` (only tickets bearing it)."""
    q = params.get("q")
    if not q:
        raise FieldError("q", "is required")
    if len(q) > MAX_QUERY_CHARS:
        raise FieldError("q", f"may be {MAX_QUERY_CHARS} characters at most")
    terms = terms_of(q)  # none (only punctuation): nothing is found
    if len(terms) > MAX_TERMS:
        raise FieldError("q", f"may have {MAX_TERMS} words at most")
    state = params.get("state") or None
    if state is not None and state not in tickets.STATES:
        raise FieldError("state", f"must be one of {', '.join(tickets.STATES)}")
    integration = params.get("integration") or None
    if integration is not None and (len(integration) > 32 or "\x00" in integration):
        raise FieldError("integration", "is not an integration id")
    start = _when("from", params.get("from"), end=False)
    end = _when("to", params.get("to"), end=True)  # before `from`: nothing is found
    limit = _int("limit", params.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    before = _int("before", params.get("before"), None, 1, 2**63 - 1)
    assert limit is not None
    raw_label = params.get("label")
    label = labels.check(raw_label, "label") if raw_label else None
    return Query(tuple(terms), state, integration, start, end, limit, before, label)


def _ticket_of(actor: Actor) -> sa.ColumnElement[Any]:
    """The ticket a message is shown under: its own; for the bot's history (no ticket), the
    first ticket of the conversation opened since that `actor` may see (the handover it
    led to), else the latest they may see."""
    t2 = _t.alias("t2")
    mine = sa.and_(t2.c.conversation_id == _m.c.conversation_id, can_see_sql(actor, t2))
    after = (sa.select(sa.func.min(t2.c.id)).where(mine, t2.c.opened_at >= _m.c.created_at)
             .scalar_subquery())
    latest = sa.select(sa.func.max(t2.c.id)).where(mine).scalar_subquery()
    return sa.func.coalesce(_m.c.ticket_id, after, latest)


def statement(dialect: str, actor: Actor, query: Query) -> sa.Select[Any]:
    """The page's SELECT: matching messages `actor` may read, newest first, one row more
    than `limit` (to tell whether a next page exists)."""
    if dialect == "sqlite":
        # Each term quoted ("" doubles a quote; terms hold letters and digits only anyway).
        match = " ".join('"' + term.replace('"', '""') + '"' for term in query.terms)
        fts = sa.table("message_fts", sa.column("rowid"))
        source = fts.join(_m, _m.c.id == fts.c.rowid)
        matched = sa.text("message_fts MATCH :match").bindparams(match=match)
        order = fts.c.rowid.desc()
        before = fts.c.rowid < query.before if query.before else None
    elif dialect == "postgresql":
        # Lexemes of letters and digits only, joined by &: nothing else reaches to_tsquery.
        # Rendered into the statement (quoted by the dialect), not a parameter: a prepared
        # statement's generic plan cannot tell a common word from a rare one (newest first
        # by the primary key for the one, the GIN index for the other).
        tsquery = sa.bindparam("tsquery", " & ".join(query.terms), literal_execute=True)
        source = _m
        matched = sa.literal_column("message.search_vector").op("@@")(
            sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), tsquery))
        order = _m.c.id.desc()
        before = _m.c.id < query.before if query.before else None
    else:
        raise NotImplementedError(f"no full-text search on {dialect}")
    source = source.join(_t, _t.c.id == _ticket_of(actor))
    conditions: list[sa.ColumnElement[bool]] = [
        matched, _m.c.kind.in_(KINDS), can_see_sql(actor, _t)]
    if before is not None:
        conditions.append(before)
    if query.state is not None:
        conditions.append(_t.c.state == query.state)
    if query.integration is not None:
        conditions.append(_t.c.integration_id == query.integration)
    if query.label is not None:
        conditions.append(sa.exists().where(_tl.c.ticket_id == _t.c.id,
                                            _tl.c.label == query.label))
    if query.start is not None:
        conditions.append(_m.c.created_at >= query.start)
    if query.end is not None:
        conditions.append(_m.c.created_at < query.end)
    return (sa.select(_m.c.id, _m.c.conversation_id, _m.c.kind, _m.c.text, _m.c.created_at,
                      _t.c.id.label("ticket_id"), _t.c.state, _t.c.integration_id)
            .select_from(source).where(*conditions).order_by(order).limit(query.limit + 1))


def snippet(text: str, terms: tuple[str, ...] | list[str],
            width: int = SNIPPET_CHARS) -> list[tuple[str, bool]]:
    """About `width` characters of `text` around its first matched word, as parts
    `(text, matched)`: the words equal to a term (after folding) are the matched parts.
    An ellipsis marks text cut at either end. Plain data, never markup."""
    wanted = set(terms)
    words = [w for w in _WORD.finditer(text) if fold(w.group()) in wanted]
    first = words[0].start() if words else 0
    start = max(0, min(first - width // 3, len(text) - width))
    end = min(len(text), start + width)
    if start > 0:  # begin at a word boundary
        space = text.find(" ", start, first if words else end)
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", max(start, words[0].end() if words else start), end)
        end = space if space > start else end
    parts: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    at = start
    for w in words:
        if w.start() < start or w.end() > end:
            continue
        if w.start() > at:
            parts.append((text[at:w.start()], False))
        parts.append((w.group(), True))
        at = w.end()
    if at < end:
        parts.append((text[at:end], False))
    if end < len(text):
        parts.append(("…", False))
    merged: list[tuple[str, bool]] = []
    for part in parts:  # adjacent plain parts as one
        if merged and not part[1] and not merged[-1][1]:
            merged[-1] = (merged[-1][0] + part[0], False)
        else:
            merged.append(part)
    return merged


async def search(conn: AsyncConnection, actor: Actor, query: Query) -> dict[str, Any]:
    """One page of results: `{"results": [{ticket_id, message_id, conversation_id, kind,
    created_at, state, integration_id, snippet: [[text, matched], ...]}], "next_before"}`."""
    if not query.terms:
        return {"results": [], "next_before": None}
    rows = (await conn.execute(statement(conn.dialect.name, actor, query))).all()
    page = rows[:query.limit]
    return {
        "results": [{
            "ticket_id": r.ticket_id, "message_id": r.id, "conversation_id": r.conversation_id,
            "kind": r.kind, "created_at": r.created_at.isoformat(), "state": r.state,
            "integration_id": r.integration_id,
            "snippet": [[text, matched] for text, matched in snippet(r.text, query.terms)],
        } for r in page],
        "next_before": page[-1].id if len(rows) > query.limit else None,
    }
