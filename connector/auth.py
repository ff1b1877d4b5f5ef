"""Sign-in, sessions, CSRF and login throttling. Knows nothing of HTTP.

Sessions are database rows keyed by the SHA-256 of the cookie value, so they
are revocable from any instance and a leaked database holds no usable token.
A session ends on logout, on idle timeout, at its absolute lifetime, and when
its user's password changes or the user is disabled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.concurrency import run_in_threadpool

from connector.db import dialect_insert, utcnow
from connector.models import LoginThrottle, User, UserSession
from connector.security import hash_secret, tokens_equal, verify_password
from connector.settings import Settings
from connector.store import Store, SyncTx
from connector.tickets import Actor

log = logging.getLogger("connector.auth")

_s = UserSession.__table__
_u = User.__table__
_th = LoginThrottle.__table__

COOKIE = "connector_session"
#: last_seen_at is written at most this often per session (not on every request).
TOUCH_EVERY = dt.timedelta(seconds=30)


@dataclass(slots=True, frozen=True)
class Principal:
    session_id: str
    csrf_token: str
    user_id: int
    username: str
    role: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.username, self.role)

    def user_dict(self) -> dict[str, object]:
        return {"id": self.user_id, "username": self.username, "role": self.role}


class LoginRefused(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("too many failed sign-ins; try again later" if retry_after
                         else "wrong username or password")
        self.retry_after = retry_after


async def login(store: Store, settings: Settings, username: str, password: str,
                address: str) -> tuple[str, Principal]:
    """Check credentials; returns (cookie value, principal) or raises LoginRefused.

    Every attempt is counted, atomically, *before* the password is checked, so
    a burst of parallel guesses cannot all slip past the limit; a success takes
    its count back. The argon2 check runs in a thread and outside any write
    transaction, so a sign-in never holds the database's write lock for it.
    """
    keys = [f"user:{username.lower()[:100]}", f"addr:{address[:100]}"]
    async with store.begin() as conn:
        locked = await _count_attempt(conn, settings, keys)
    if locked:
        raise LoginRefused(retry_after=locked)
    async with store.read() as conn:
        row = (await conn.execute(sa.select(_u).where(_u.c.username == username))).first()
    ok = await run_in_threadpool(verify_password, password, row.password_hash if row else None)
    ok = ok and row is not None and not row.disabled
    if not ok:
        raise LoginRefused()
    assert row is not None
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    async with store.begin() as conn:
        await conn.execute(sa.delete(_th).where(_th.c.key == keys[0]))
        await conn.execute(sa.update(_th).where(_th.c.key == keys[1], _th.c.failures > 0)
                           .values(failures=_th.c.failures - 1))
        await conn.execute(sa.insert(_s).values(
            id=hash_secret(token), user_id=row.id, csrf_token=csrf, created_at=now,
            last_seen_at=now))
    return token, Principal(hash_secret(token), csrf, row.id, row.username, row.role)


_SESSION = (sa.select(_s, _u.c.username, _u.c.role, _u.c.disabled)
            .join(_u, _u.c.id == _s.c.user_id).where(_s.c.id == sa.bindparam("sid")))
#: Touches under way, so a burst of requests writes `last_seen_at` once.
_touching: set[str] = set()


async def authenticate(store: Store, settings: Settings,
                       token: str | None) -> Principal | None:
    """The session's principal, or None. Reads only; a periodic touch is written after."""
    if not token or len(token) > 200:
        return None
    session_id = hash_secret(token)
    async with store.read() as conn:
        row = (await conn.execute(_SESSION, {"sid": session_id})).first()
    now = utcnow()
    if row is None or not session_usable(row, settings, now):
        return None
    if now - row.last_seen_at > TOUCH_EVERY and session_id not in _touching:
        # Not awaited: the request does not wait for a write turn behind ingest.
        _touching.add(session_id)
        task = asyncio.create_task(store.write(touch_sync, {session_id}))
        task.add_done_callback(lambda t: _touched(t, session_id))
    return Principal(session_id, row.csrf_token, row.user_id, row.username, row.role)


def _touched(task: asyncio.Task[None], session_id: str) -> None:
    _touching.discard(session_id)
    if not task.cancelled() and task.exception() is not None:
        log.error("auth: recording session activity failed: %r", task.exception())


def session_usable(row: Any, settings: Settings, now: dt.datetime) -> bool:
    """`row`: the session's columns and its user's `disabled`."""
    return (
        row.revoked_at is None and not row.disabled
        and now - row.last_seen_at < dt.timedelta(seconds=settings.session_idle_seconds)
        and now - row.created_at < dt.timedelta(seconds=settings.session_max_seconds)
    )


async def logout(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(sa.update(_s).where(_s.c.id == session_id, _s.c.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))


async def dead_sessions(conn: AsyncConnection, settings: Settings,
                        session_ids: set[str]) -> set[str]:
    """Of `session_ids`, those no longer usable (revoked, expired, user disabled)."""
    if not session_ids:
        return set()
    rows = (await conn.execute(
        sa.select(_s, _u.c.disabled).join(_u, _u.c.id == _s.c.user_id)
        .where(_s.c.id.in_(session_ids)))).all()
    now = utcnow()
    alive = {r.id for r in rows if session_usable(r, settings, now)}
    return session_ids - alive


async def session_roles(conn: AsyncConnection, session_ids: set[str]) -> dict[str, str]:
    """The current role of each session's user (roles can change under a live socket)."""
    if not session_ids:
        return {}
    rows = await conn.execute(sa.select(_s.c.id, _u.c.role).join(_u, _u.c.id == _s.c.user_id)
                              .where(_s.c.id.in_(session_ids)))
    return {r.id: r.role for r in rows}


async def touch(conn: AsyncConnection, session_ids: set[str]) -> None:
    if session_ids:
        await conn.execute(sa.update(_s).where(_s.c.id.in_(session_ids))
                           .values(last_seen_at=utcnow()))


def touch_sync(tx: SyncTx, session_ids: set[str]) -> None:
    tx.conn.execute(sa.update(_s).where(_s.c.id.in_(session_ids)).values(last_seen_at=utcnow()))


def csrf_ok(principal: Principal, presented: str | None) -> bool:
    return presented is not None and tokens_equal(presented, principal.csrf_token)


async def _count_attempt(conn: AsyncConnection, settings: Settings,
                         keys: list[str]) -> float | None:
    """Count one attempt per key (username, address); seconds to wait when over a limit.

    An address gets more room than a username (several people behind one NAT).
    Runs in a write transaction: the row updates serialise concurrent attempts.
    """
    now = utcnow()
    window = dt.timedelta(seconds=settings.login_lockout_seconds)
    limits = dict(zip(keys, (settings.login_max_failures, settings.login_max_failures * 4),
                      strict=True))
    rows = {}
    for key in keys:
        await conn.execute(dialect_insert(_th, conn.dialect.name).values(
            key=key, failures=0, first_failure_at=now).on_conflict_do_nothing(
            index_elements=["key"]))
        rows[key] = (await conn.execute(
            sa.select(_th).where(_th.c.key == key).with_for_update())).one()
    # A refused attempt is not counted: it must not lock anyone else out.
    wait = max(((r.locked_until - now).total_seconds() for r in rows.values()
                if r.locked_until is not None and r.locked_until > now), default=0.0)
    if wait:
        return wait
    counts = {}
    for key, row in rows.items():
        fresh = now - row.first_failure_at >= window or row.locked_until is not None
        counts[key] = (1 if fresh else row.failures + 1,
                       now if fresh else row.first_failure_at)
    over = {key for key, (n, _) in counts.items() if n > limits[key]}
    # Over a limit: lock that key and refuse, counting nothing against the other.
    for key in over or counts:
        n, first = counts[key]
        await conn.execute(sa.update(_th).where(_th.c.key == key).values(
            failures=n, first_failure_at=first, locked_until=now + window if over else None))
    if over:
        wait = window.total_seconds()
    return wait or None
