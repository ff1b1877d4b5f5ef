"""Canned responses: saved replies an agent inserts with `/shortcut` in the console.

Two scopes. `shared` ones (`owner_id` null) are read by everyone and managed by
supervisors and admins; `personal` ones are read and managed by their owner
alone: anyone else is answered as if it did not exist. A shortcut (1..50 of
a-z, 0-9, `_` and `-`, lowercased) is unique among the shared ones, and among
each user's personal ones (409); a personal shortcut may repeat a shared one.
The text (1..4000 characters) is stored as written: its placeholders `{agent}`
and `{end_user}` are filled by the console when it inserts it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain.errors import Conflict, FieldError, Forbidden, NotFound
from connector.domain.roles import Actor
from connector.storage.db import utcnow
from connector.storage.models import CannedResponse
from connector.storage.store import SyncTx

_c = CannedResponse.__table__

Scope = Literal["shared", "personal"]
SCOPES: tuple[Scope, ...] = ("shared", "personal")
MAX_SHORTCUT = 50
MAX_TEXT = 4000
SHORTCUT_PATTERN = r"^[a-z0-9_-]{1,50}$"
_SHORTCUT = re.compile(SHORTCUT_PATTERN)
#: Two-key PostgreSQL advisory lock (this key, the owner id or 0 for shared) taken while
#: a shortcut is checked for uniqueness and written.
LOCK_KEY = 14_001


def check_shortcut(value: str) -> str:
    shortcut = value.strip().lower()
    if not _SHORTCUT.fullmatch(shortcut):
        raise FieldError("shortcut", f"must be 1 to {MAX_SHORTCUT} characters among "
                                     "a-z, 0-9, _ and -")
    return shortcut


def check_text(value: str) -> str:
    if not value.strip() or len(value) > MAX_TEXT:
        raise FieldError("text", f"must be 1 to {MAX_TEXT} characters, not only spaces")
    return value


def _out(row: Any, actor: Actor) -> dict[str, Any]:
    m = row._mapping if hasattr(row, "_mapping") else row
    return {"id": m["id"], "scope": m["scope"], "shortcut": m["shortcut"], "text": m["text"],
            "editable": may_manage(actor, m), "updated_at": m["updated_at"].isoformat()}


def _readable(actor: Actor) -> sa.ColumnElement[bool]:
    return sa.or_(_c.c.scope == "shared", _c.c.owner_id == actor.id)


def may_manage(actor: Actor, row: Any) -> bool:
    """Shared: staff; personal: its owner only."""
    if row["scope"] == "shared":
        return actor.is_staff
    return row["owner_id"] == actor.id


async def readable(conn: AsyncConnection, actor: Actor) -> list[dict[str, Any]]:
    """The shared ones and the actor's own, by shortcut (personal first on a tie)."""
    rows = (await conn.execute(sa.select(_c).where(_readable(actor)).order_by(
        _c.c.shortcut, sa.case((_c.c.scope == "personal", 0), else_=1), _c.c.id))).all()
    return [_out(r, actor) for r in rows]


def _lock(tx: SyncTx, owner_id: int | None) -> None:
    if tx.dialect == "postgresql":
        tx.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY, owner_id or 0)))


def _check_free(tx: SyncTx, scope: str, owner_id: int | None, shortcut: str,
                except_id: int | None = None) -> None:
    _lock(tx, owner_id)
    query = sa.select(_c.c.id).where(_c.c.scope == scope, _c.c.shortcut == shortcut)
    query = query.where(_c.c.owner_id.is_(None) if owner_id is None
                        else _c.c.owner_id == owner_id)
    if except_id is not None:
        query = query.where(_c.c.id != except_id)
    if tx.conn.execute(query.limit(1)).first() is not None:
        where = "shared responses" if scope == "shared" else "your responses"
        raise Conflict(f"shortcut /{shortcut} is already used among {where}", field="shortcut")


def create_sync(tx: SyncTx, actor: Actor, scope: str, shortcut: str,
                text: str) -> dict[str, Any]:
    if scope not in SCOPES:
        raise FieldError("scope", "must be shared or personal")
    if scope == "shared" and not actor.is_staff:
        raise Forbidden("only supervisors and admins manage shared responses")
    shortcut, text = check_shortcut(shortcut), check_text(text)
    owner_id = actor.id if scope == "personal" else None
    _check_free(tx, scope, owner_id, shortcut)
    now = utcnow()
    row = {"scope": scope, "owner_id": owner_id, "shortcut": shortcut, "text": text,
           "created_at": now, "updated_at": now}
    row["id"] = tx.conn.execute(sa.insert(_c).returning(_c.c.id), row).scalar_one()
    return _out(row, actor)


def _managed(tx: SyncTx, actor: Actor, response_id: int) -> Any:
    row = tx.conn.execute(sa.select(_c).where(
        _c.c.id == response_id, _readable(actor))).first()
    if row is None:
        raise NotFound("no such canned response")
    if not may_manage(actor, row._mapping):
        raise Forbidden("only supervisors and admins manage shared responses")
    return row


def update_sync(tx: SyncTx, actor: Actor, response_id: int, shortcut: str | None,
                text: str | None) -> dict[str, Any]:
    row = _managed(tx, actor, response_id)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if shortcut is not None:
        values["shortcut"] = check_shortcut(shortcut)
        _check_free(tx, row.scope, row.owner_id, values["shortcut"], except_id=row.id)
    if text is not None:
        values["text"] = check_text(text)
    tx.conn.execute(sa.update(_c).where(_c.c.id == row.id).values(**values))
    return _out({**row._mapping, **values}, actor)


def delete_sync(tx: SyncTx, actor: Actor, response_id: int) -> dict[str, Any]:
    row = _managed(tx, actor, response_id)
    tx.conn.execute(sa.delete(_c).where(_c.c.id == row.id))
    return {"id": row.id, "deleted": True}
