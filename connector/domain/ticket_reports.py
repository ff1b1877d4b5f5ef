"""Ticket reports over a range of UTC dates: one row per handover (the CSV), and
figures per day, agent, integration or category (the JSON).

A ticket belongs to the range when its handover (`opened_at`) falls on one of its
UTC dates, `from` and `to` included. The durations are those of the ticket API
(`tickets.metrics`), measured from the handover, never from the start of the bot
conversation: the wait runs from the handover to the first assignment (`claimed_at`;
to the close of a ticket nobody took; to now while it still waits), the first
response from the handover to the first agent reply, the handling time from the
first assignment to the resolution.

Rows are read in ticket id order (the order of handover), `CHUNK` at a time, each
chunk in its own short read, so neither a large range nor a slow download holds a
connection or the whole range in memory. The figures are computed in Python from
the rows of the range (one code path for SQLite and PostgreSQL); percentiles
interpolate between the closest ranks, as PostgreSQL's `percentile_cont` does.
A range holding more than `MAX_AGGREGATED` handovers is refused for the figures
(the CSV has no such limit).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import sqlalchemy as sa

from connector.domain import labels
from connector.domain.csat import Tally
from connector.domain.errors import FieldError
from connector.domain.tickets import metrics
from connector.storage.models import (
    Conversation,
    Integration,
    Ticket,
    TicketLabel,
    TicketTransition,
    User,
)
from connector.storage.store import Store

_t = Ticket.__table__
_tr = TicketTransition.__table__
_tl = TicketLabel.__table__
_conv = Conversation.__table__
_integ = Integration.__table__
_u = User.__table__

#: The longest range, in days (`from` and `to` included).
MAX_DAYS = 366
#: Tickets read per query.
CHUNK = 1000
#: The most handovers the figures are computed from (their durations are held in memory).
MAX_AGGREGATED = 200_000

By = Literal["day", "agent", "integration", "category"]
GROUPINGS: tuple[By, ...] = get_args(By)

COLUMNS = ("id", "integration", "end_user", "category", "language", "opened", "assigned",
           "first_response", "resolved", "wait_seconds", "first_response_seconds",
           "handling_seconds", "requeues", "agent", "survey_sent", "csat_score", "csat_comment")
#: A cell starting with one of these is read as a formula by spreadsheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EARLIEST, LATEST = dt.date(1970, 1, 1), dt.date(9998, 12, 31)


@dataclass(frozen=True)
class DateRange:
    """UTC dates `start` to `end`, both included; with `label`, only tickets bearing it."""

    start: dt.date
    end: dt.date
    label: str | None = None

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), dt.UTC)

    @property
    def until(self) -> dt.datetime:
        """The first instant after the range."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), dt.UTC)

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def filename(self) -> str:
        return f"tickets-{self.start.isoformat()}-to-{self.end.isoformat()}.csv"


def parse_date(name: str, raw: str) -> dt.date:
    """A date written YYYY-MM-DD (ASCII digits) that exists, or `FieldError` naming `name`:
    the one reading of a date parameter, for reports and ticket lists."""
    if not _DATE.fullmatch(raw):
        raise FieldError(name, "must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise FieldError(name, "no such date") from None


def _date(name: str, raw: str | None) -> dt.date:
    if raw is None or not raw:
        raise FieldError(name, "required, a date as YYYY-MM-DD")
    value = parse_date(name, raw)
    if not EARLIEST <= value <= LATEST:
        raise FieldError(name, f"must be from {EARLIEST} to {LATEST}")
    return value


def parse_range(raw_from: str | None, raw_to: str | None,
                raw_label: str | None = None) -> DateRange:
    """The range of the query parameters `from` and `to` (and `label`), or `FieldError`
    naming the one at fault: missing or not a date (`from` or `to`), `to` before `from`
    or more than `MAX_DAYS` days in all (`to`), a label `labels.check` refuses."""
    start, end = _date("from", raw_from), _date("to", raw_to)
    if end < start:
        raise FieldError("to", "must be on or after from")
    if (end - start).days + 1 > MAX_DAYS:
        raise FieldError("to", f"the range may span {MAX_DAYS} days at most")
    label = labels.check(raw_label, "label") if raw_label is not None else None
    return DateRange(start, end, label)


def parse_by(raw: str | None) -> By:
    if raw is None:
        return "day"
    for by in GROUPINGS:
        if raw == by:
            return by
    raise FieldError("by", f"must be one of {', '.join(GROUPINGS)}")


# --- reading -------------------------------------------------------------------------

#: The last assignee: the current one, else the latest transition that named one (a
#: ticket re-queued and still waiting keeps the agent it was taken from).
_LAST_ASSIGNEE = sa.func.coalesce(_t.c.assignee_id, (
    sa.select(_tr.c.assignee_id)
    .where(_tr.c.ticket_id == _t.c.id, _tr.c.assignee_id.is_not(None))
    .order_by(_tr.c.id.desc()).limit(1).scalar_subquery()))
_AUTO_RESOLVED = sa.exists().where(
    _tr.c.ticket_id == _t.c.id, _tr.c.to_state == "resolved", _tr.c.reason == "inactive")
_ROWS = (
    sa.select(_t.c.id, _t.c.integration_id, _integ.c.name.label("integration_name"),
              _conv.c.end_user_id, _t.c.category, _t.c.lang, _t.c.opened_at, _t.c.claimed_at,
              _t.c.first_response_at, _t.c.resolved_at, _t.c.requeues,
              _LAST_ASSIGNEE.label("agent_id"), _AUTO_RESOLVED.label("auto_resolved"),
              _t.c.survey_sent_at, _t.c.csat_score, _t.c.csat_comment)
    .join(_conv, _conv.c.id == _t.c.conversation_id)
    .join(_integ, _integ.c.id == _t.c.integration_id)
)


async def _chunk(store: Store, rng: DateRange, after: int,
                 now: dt.datetime) -> list[dict[str, Any]]:
    """Up to `CHUNK` tickets of the range with an id above `after`, in id order, each with
    its durations (`tickets.metrics` at `now`) and its last assignee's username."""
    query = (_ROWS.where(_t.c.opened_at >= rng.since, _t.c.opened_at < rng.until,
                         _t.c.id > after)
             .order_by(_t.c.id).limit(CHUNK))
    if rng.label is not None:
        query = query.where(sa.exists().where(_tl.c.ticket_id == _t.c.id,
                                              _tl.c.label == rng.label))
    async with store.read() as conn:
        rows = [dict(r._mapping) for r in (await conn.execute(query)).all()]
        ids = {r["agent_id"] for r in rows} - {None}
        names = dict((await conn.execute(sa.select(_u.c.id, _u.c.username).where(
            _u.c.id.in_(ids)))).all()) if ids else {}
    for row in rows:
        row["agent"] = names.get(row["agent_id"])
        row["auto_resolved"] = bool(row["auto_resolved"])
        row.update(metrics(row, now))
    return rows


async def chunks(store: Store, rng: DateRange, now: dt.datetime,
                 first: list[dict[str, Any]] | None = None,
                 ) -> AsyncIterator[list[dict[str, Any]]]:
    """Every ticket of the range, a chunk at a time (`first`: the first chunk, already read)."""
    rows = first if first is not None else await _chunk(store, rng, 0, now)
    while rows:
        yield rows
        if len(rows) < CHUNK:
            return
        rows = await _chunk(store, rng, rows[-1]["id"], now)


async def first_chunk(store: Store, rng: DateRange, now: dt.datetime) -> list[dict[str, Any]]:
    """The first chunk, read before an answer starts, so that a database failure is still
    an error answer rather than a cut download."""
    return await _chunk(store, rng, 0, now)


# --- the CSV -------------------------------------------------------------------------

def defuse(text: str) -> str:
    """A cell a spreadsheet would read as a formula, made plain text with a leading
    apostrophe (OWASP's advice on CSV injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _time(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def _seconds(value: float | None) -> str:
    return "" if value is None else str(round(value, 3))


def csv_row(row: dict[str, Any]) -> list[str]:
    """One ticket as the CSV's cells (`COLUMNS`), each defused."""
    cells = [str(row["id"]), row["integration_id"], row["end_user_id"], row["category"] or "",
             row["lang"] or "", _time(row["opened_at"]), _time(row["claimed_at"]),
             _time(row["first_response_at"]), _time(row["resolved_at"]),
             _seconds(row["wait_seconds"]), _seconds(row["first_response_seconds"]),
             _seconds(row["handling_seconds"]), str(row["requeues"]), row["agent"] or "",
             _time(row["survey_sent_at"]),
             "" if row["csat_score"] is None else str(row["csat_score"]),
             row["csat_comment"] or ""]
    return [defuse(c) for c in cells]


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    """RFC 4180: comma-separated, CRLF line ends, a field holding a comma, a quote or a
    line break quoted, quotes doubled."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


async def csv_chunks(store: Store, rng: DateRange, now: dt.datetime,
                     first: list[dict[str, Any]] | None = None) -> AsyncIterator[str]:
    """The CSV, a header line then one piece per chunk of tickets."""
    yield csv_text([COLUMNS])
    async for rows in chunks(store, rng, now, first):
        yield csv_text(csv_row(r) for r in rows)


# --- the figures ---------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float | None:
    """The `p` (0 to 1) percentile of `values`, interpolating between the closest ranks
    (PostgreSQL's `percentile_cont`); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class _Group:
    key: str | None
    label: str
    handovers: int = 0
    requeues: int = 0
    auto_resolved: int = 0
    waits: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    handlings: list[float] = field(default_factory=list)
    csat: Tally = field(default_factory=Tally)

    def add(self, row: dict[str, Any]) -> None:
        self.handovers += 1
        self.csat.add(row["survey_sent_at"], row["csat_score"])
        self.requeues += row["requeues"]
        self.auto_resolved += row["auto_resolved"]
        for values, value in ((self.waits, row["wait_seconds"]),
                              (self.firsts, row["first_response_seconds"]),
                              (self.handlings, row["handling_seconds"])):
            if value is not None:
                values.append(value)

    def out(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {"key": self.key, "label": self.label, "handovers": self.handovers,
                "wait_median_seconds": r(percentile(self.waits, 0.5)),
                "wait_p90_seconds": r(percentile(self.waits, 0.9)),
                "first_response_median_seconds": r(percentile(self.firsts, 0.5)),
                "first_response_p90_seconds": r(percentile(self.firsts, 0.9)),
                "handling_median_seconds": r(percentile(self.handlings, 0.5)),
                "requeues": self.requeues, "auto_resolved": self.auto_resolved,
                "csat": self.csat.out()}


def _group_of(by: By, row: dict[str, Any]) -> tuple[str | None, str]:
    """The group key of a ticket and how people read it."""
    if by == "day":
        day = row["opened_at"].astimezone(dt.UTC).date().isoformat()
        return day, day
    if by == "agent":
        return row["agent"], row["agent"] or "unassigned"
    if by == "integration":
        return row["integration_id"], row["integration_name"]
    return row["category"], row["category"] or "no category"


async def figures(store: Store, rng: DateRange, by: By, now: dt.datetime) -> dict[str, Any]:
    """Per group of `by`: handovers, median and p90 wait and first response, median
    handling time, re-queues (`ticket.requeues`: taken back from a silent agent) and
    tickets auto-resolved (a resolution with reason `inactive`), satisfaction
    (`csat.Tally`: surveys, answers, average, distribution, response rate); and the same for the
    whole range (`total`). By day, every date of the range is listed, oldest first;
    other groups come by handovers, most first."""
    groups: dict[str | None, _Group] = {}
    if by == "day":
        groups = {d.isoformat(): _Group(d.isoformat(), d.isoformat()) for d in rng.days()}
    total = _Group(None, "all")
    async for rows in chunks(store, rng, now):
        for row in rows:
            if total.handovers >= MAX_AGGREGATED:
                raise FieldError("to", f"the range holds more than {MAX_AGGREGATED} "
                                       "handovers: choose a shorter one")
            key, label = _group_of(by, row)
            groups.setdefault(key, _Group(key, label)).add(row)
            total.add(row)
    ordered = list(groups.values())
    if by != "day":
        ordered.sort(key=lambda g: (-g.handovers, g.key is None, g.label))
    return {"from": rng.start.isoformat(), "to": rng.end.isoformat(), "by": by,
            "groups": [g.out() for g in ordered], "total": total.out()}
