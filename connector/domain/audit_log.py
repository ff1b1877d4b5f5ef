"""Reading and pruning the audit trail (`domain.audit` writes it).

`search` answers newest first, a page at a time with an id cursor (`before`), so
a page is one index range whatever the table's size; `prune` deletes rows past
their retention a small batch per call (the housekeeping task loops).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain.errors import FieldError
from connector.storage.audit_models import AuditEvent

_t = AuditEvent.__table__

#: An action (`user.created`) or the part before its dot (`user`: every user action).
_ACTION = re.compile(r"[a-z_]{1,30}(\.[a-z_]{1,30})?")
MAX_LIMIT = 200
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class Filters:
    """What `search` narrows by; None: any."""

    #: The actor's username then (`cli` for the command line).
    actor: str | None = None
    #: An action, or its prefix before the dot.
    action: str | None = None
    #: `type` or `type:id` (`integration:abc`, `user:3`).
    target: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def check_action(value: str) -> str:
    if not _ACTION.fullmatch(value):
        raise FieldError("action", "must be an action (user.created) or its first part (user)")
    return value


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filters of the query parameters actor, action, target, from and to (absent, or
    an empty actor or target: any), or `FieldError` naming the one at fault. `from` and
    `to`: UTC dates, both included."""
    def text(name: str, longest: int) -> str | None:
        value = params.get(name) or None
        if value is not None and (len(value) > longest or "\x00" in value):
            raise FieldError(name, f"must be at most {longest} characters, without NUL")
        return value

    action = params.get("action")
    since, until = _moment("from", params.get("from")), _moment("to", params.get("to"), True)
    if since and until and until <= since:
        raise FieldError("to", "must be on or after from")
    return Filters(actor=text("actor", 100),
                   action=None if action is None else check_action(action),
                   target=text("target", 231), since=since, until=until)


def _moment(name: str, raw: str | None, end: bool = False) -> dt.datetime | None:
    """The start of the UTC day `raw` (`end`: of the next day), None when absent."""
    if raw is None:
        return None
    if not _DATE.fullmatch(raw):
        raise FieldError(name, "must be a date (2026-01-31)")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise FieldError(name, "must be a date (2026-01-31)") from None
    return (dt.datetime.combine(day, dt.time(), dt.UTC)
            + (dt.timedelta(days=1) if end else dt.timedelta()))


def _where(filters: Filters) -> list[Any]:
    out: list[Any] = []
    if filters.actor is not None:
        out.append(_t.c.actor == filters.actor)
    if filters.action is not None:
        action = check_action(filters.action)
        out.append(_t.c.action == action if "." in action
                   else _t.c.action.like(action + ".%"))
    if filters.target is not None:
        kind, _, ident = filters.target.partition(":")
        out.append(_t.c.target_type == kind)
        if ident:
            out.append(_t.c.target_id == ident)
    if filters.since is not None:
        out.append(_t.c.at >= filters.since)
    if filters.until is not None:
        out.append(_t.c.at < filters.until)
    return out


def describe(row: Any) -> dict[str, Any]:
    """One event as the API shows it."""
    return {"id": row.id, "at": row.at.isoformat(),
            "actor": {"id": row.actor_id, "username": row.actor, "role": row.role},
            "address": row.address, "action": row.action,
            "target": {"type": row.target_type, "id": row.target_id}
            if row.target_type is not None else None,
            "changes": row.changes, "request_id": row.request_id}


async def search(conn: AsyncConnection, filters: Filters, *, before: int | None = None,
                 limit: int = 50) -> tuple[list[dict[str, Any]], int | None]:
    """Events matching `filters`, newest first, older than id `before`; and the cursor of
    the next page (None on the last)."""
    query = sa.select(_t).where(*_where(filters))
    if before is not None:
        query = query.where(_t.c.id < before)
    rows = (await conn.execute(query.order_by(_t.c.id.desc()).limit(limit + 1))).all()
    page = [describe(r) for r in rows[:limit]]
    return page, (page[-1]["id"] if len(rows) > limit else None)


async def prune(conn: AsyncConnection, older_than: dt.datetime, batch: int = 500) -> int:
    """Delete up to `batch` of the oldest events recorded before `older_than`; how many."""
    oldest = sa.select(_t.c.id).where(_t.c.at < older_than).order_by(_t.c.id).limit(batch)
    ids = list((await conn.execute(oldest)).scalars())
    if not ids:
        return 0
    await conn.execute(sa.delete(_t).where(_t.c.id.in_(ids)))
    return len(ids)


async def prune_expired(begin: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
                        older_than: dt.datetime, batch: int = 500) -> int:
    """`prune` in transactions of their own (`begin()`: `Store.begin`) until none is left,
    so that no delete holds the database for long; how many were deleted."""
    total = 0
    while True:
        async with begin() as conn:
            done = await prune(conn, older_than, batch)
        total += done
        if done < batch:
            return total
