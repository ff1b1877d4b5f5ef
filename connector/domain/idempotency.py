"""Idempotent requests: the first answer per user and key, kept 24 hours.

A request sent with an idempotency key runs its action at most once. The key's
row (`idempotent_request`) is inserted in the same transaction as the action
and holds the answer, so either both are committed or neither is: a crash
leaves no half-done request behind, and a retry after it simply acts.

Concurrent requests with one key: the second waits for the first. On
PostgreSQL its INSERT of the same primary key blocks on the first
transaction's uncommitted row and, once that commits, finds the row and
answers with the stored answer; if the first rolled back, the second acts. On
SQLite writers are serialised, so the second reads the committed row. Exactly
one of them acts either way.

Only an action that was done is remembered: a refusal (`DomainError`) rolls the
transaction back with the key's row, so its retry is judged again (nothing was
done, so nothing can be done twice). The same key for another request (another
target, or another body) is refused. Rows older than `WINDOW` are ignored here
and deleted by the app's housekeeping (`prune`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain.errors import Conflict, Invalid
from connector.storage.db import dialect_insert, utcnow
from connector.storage.models import IdempotentRequest
from connector.storage.store import SyncTx

_r = IdempotentRequest.__table__

#: How long a key's first answer is replayed.
WINDOW = dt.timedelta(hours=24)
#: The status of a row whose action has not finished (never committed as such).
_PENDING = 0


@dataclass(frozen=True, slots=True)
class Keyed:
    """A request under an idempotency key: whose, which key, what it asks."""

    user_id: int
    key: str
    #: What the request acts on, such as "POST /api/tickets/7/messages".
    target: str
    #: sha256 (hex) of the request's body in canonical JSON (`fingerprint`).
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    #: True when this is the stored answer of an earlier request with the key.
    replayed: bool


def fingerprint(data: Any) -> str:
    """The body's fingerprint: sha256 of its JSON with sorted keys (spacing ignored)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _stored(tx: SyncTx, keyed: Keyed) -> Any:
    return tx.conn.execute(sa.select(_r).where(
        _r.c.user_id == keyed.user_id, _r.c.key == keyed.key)).first()


def _replay(row: Any, keyed: Keyed, field: str) -> Answer:
    if row.target != keyed.target or row.fingerprint != keyed.fingerprint:
        raise Invalid(f"{field} reused for another request", field=field)
    if row.status == _PENDING:  # not reachable: a pending row is never committed
        raise Conflict(f"{field}: a request with this key is in progress")
    return Answer(row.status, row.response, True)


def once_sync(tx: SyncTx, keyed: Keyed, status: int, action: Callable[..., Any],
              *args: Any, field: str = "Idempotency-Key") -> Answer:
    """Run `action(tx, *args)` unless `keyed` ran within `WINDOW`: its answer, with
    `status`, stored under the key in this transaction; or the first answer again.

    Raises `Invalid` naming `field` when the key was used for another request; lets the
    action's refusals through (the transaction, key row included, rolls back).
    """
    now = utcnow()
    row = _stored(tx, keyed)
    if row is not None and row.created_at >= now - WINDOW:
        return _replay(row, keyed, field)
    if row is not None:  # expired, not yet pruned: the key is free again
        tx.conn.execute(sa.delete(_r).where(
            _r.c.user_id == keyed.user_id, _r.c.key == keyed.key))
    # On PostgreSQL this waits for a concurrent transaction holding the same key.
    inserted = tx.conn.execute(dialect_insert(_r, tx.dialect).values(
        user_id=keyed.user_id, key=keyed.key, target=keyed.target,
        fingerprint=keyed.fingerprint, status=_PENDING, response={}, created_at=now,
    ).on_conflict_do_nothing(index_elements=["user_id", "key"]))
    if inserted.rowcount != 1:  # the concurrent request committed first: its answer
        return _replay(_stored(tx, keyed), keyed, field)
    body = action(tx, *args)
    tx.conn.execute(sa.update(_r).where(
        _r.c.user_id == keyed.user_id, _r.c.key == keyed.key).values(
        status=status, response=body))
    return Answer(status, body, False)


async def prune(conn: AsyncConnection, now: dt.datetime | None = None) -> int:
    """Delete keys older than `WINDOW`; how many."""
    cutoff = (now or utcnow()) - WINDOW
    result = await conn.execute(sa.delete(_r).where(_r.c.created_at < cutoff))
    return result.rowcount or 0
