"""The audit trail: who did what, when, from which address, and what changed.

`record_sync(tx, actor, action, ...)` (in a `Store.write` function) and
`await record(conn, actor, action, ...)` (on an async connection) insert one
`audit_event` row on the connection of the action itself, so an action that
rolls back leaves no row. A failed sign-in, which changes nothing, is recorded
in a small transaction of its own.

Never a secret: `changes` is {"field": {"before": b, "after": a}}, and a field
named in `SECRETS` (passwords, keys, tokens, signing secrets) is recorded only
as {"changed": true}, whatever the caller passed (`redact`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.storage.audit_models import AuditEvent
from connector.storage.db import utcnow

_t = AuditEvent.__table__

#: Fields never recorded with their value, only as {"changed": true}.
SECRETS = frozenset({
    "password", "password_hash", "new_password", "current", "new", "key", "key_hash",
    "previous_key_hash", "token", "verify_token", "api_token", "secret", "signing_secret",
    "previous_signing_secret", "previous_secret",
})

#: Every action recorded, by what it acts on (`docs/operations.md` lists them).
ACTIONS = frozenset({
    "user.created", "user.updated", "user.role_changed", "user.disabled", "user.enabled",
    "user.password_reset",
    "integration.created", "integration.updated", "integration.key_rotated",
    "integration.signing_secret_rotated", "integration.disabled", "integration.enabled",
    "integration.deleted",
    "ticket.assigned_by_supervisor", "ticket.transferred",
    "delivery.resent",
    "end_user.erased",
    "auth.sign_in", "auth.sign_in_failed",
    "webhook.created", "webhook.updated", "webhook.deleted", "webhook.secret_rotated",
})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, as recorded: a staff member (id, username and role then), the command
    line (`CLI`) or the system (`SYSTEM`); from which address, in which request."""

    user_id: int | None = None
    username: str | None = None
    role: str | None = None
    address: str | None = None
    request_id: str | None = None


#: The `connector` command: no user, from this machine.
CLI = Actor(username="cli", address="local")
#: The connector itself (housekeeping, timers).
SYSTEM = Actor()


def redact(changes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`changes` with every secret field's value replaced by {"changed": true}."""
    if changes is None:
        return None
    return {name: ({"changed": True} if name in SECRETS else value)
            for name, value in changes.items()}


def diff(before: Mapping[str, Any], after: Mapping[str, Any],
         fields: Iterable[str] | None = None) -> dict[str, Any]:
    """{"field": {"before", "after"}} for each of `fields` (default: `after`'s) whose value
    differs; secrets only as {"changed": true}."""
    out: dict[str, Any] = {}
    for name in (fields if fields is not None else after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            out[name] = {"changed": True} if name in SECRETS else {"before": old, "after": new}
    return out


def _row(actor: Actor, action: str, target_type: str | None, target_id: Any,
         changes: Mapping[str, Any] | None) -> dict[str, Any]:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return {"at": utcnow(), "actor_id": actor.user_id, "actor": actor.username,
            "role": actor.role, "address": actor.address, "action": action,
            "target_type": target_type,
            "target_id": None if target_id is None else str(target_id),
            "changes": redact(changes) or None, "request_id": actor.request_id}


def record_sync(tx: Any, actor: Actor, action: str, target_type: str | None = None,
                target_id: Any = None, changes: Mapping[str, Any] | None = None) -> None:
    """Record `action` on `tx` (a `SyncTx` or a synchronous connection), in its
    transaction."""
    conn: sa.Connection = getattr(tx, "conn", tx)
    conn.execute(sa.insert(_t).values(**_row(actor, action, target_type, target_id, changes)))


async def record(conn: Any, actor: Actor, action: str, target_type: str | None = None,
                 target_id: Any = None, changes: Mapping[str, Any] | None = None) -> None:
    """Record `action` on `conn` (an `AsyncConnection` or a `Tx`), in its transaction."""
    c: AsyncConnection = getattr(conn, "conn", conn)
    await c.execute(sa.insert(_t).values(**_row(actor, action, target_type, target_id,
                                                  changes)))


#: A user's fields recorded by `user.updated` (role, disabled and password have actions of
#: their own).
USER_FIELDS = ("max_concurrent", "skills", "display_name", "must_change_password")


def user_actions(before: Mapping[str, Any], after: Mapping[str, Any],
                 password_changed: bool) -> list[tuple[str, dict[str, Any]]]:
    """What one change of a user records: one (action, changes) per kind of change."""
    out: list[tuple[str, dict[str, Any]]] = []
    if before.get("role") != after.get("role"):
        out.append(("user.role_changed", diff(before, after, ["role"])))
    if before.get("disabled") != after.get("disabled"):
        out.append(("user.disabled" if after.get("disabled") else "user.enabled",
                    diff(before, after, ["disabled"])))
    if password_changed:
        out.append(("user.password_reset", {"password": {"changed": True}}))
    rest = diff(before, after, USER_FIELDS)
    if rest:
        out.append(("user.updated", rest))
    return out
