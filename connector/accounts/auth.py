"""Sign-in, sessions, CSRF and login throttling. Knows nothing of HTTP.

Sessions are database rows keyed by the SHA-256 of the cookie value, so they
are revocable from any instance and a leaked database holds no usable token.
A session ends on logout, on idle timeout, at its absolute lifetime, and when
its user's password changes (but the session that changed it) or the user is
disabled. A principal whose password must be changed (`must_change_password`)
may only change it: the web layer refuses the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.concurrency import run_in_threadpool

from connector.accounts.security import hash_secret, tokens_equal, verify_password
from connector.domain import audit
from connector.domain.roles import Actor
from connector.settings import Settings
from connector.storage.db import dialect_insert, utcnow
from connector.storage.models import LoginThrottle, User, UserSession
from connector.storage.store import Store, SyncTx

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
    must_change_password: bool = False
    display_name: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.username, self.role)

    def user_dict(self) -> dict[str, object]:
        return {"id": self.user_id, "username": self.username, "role": self.role}

    def session_user(self) -> dict[str, object]:
        """The user as sign-in and `/api/session` describe them to the console."""
        return {**self.user_dict(), "display_name": self.display_name or self.username,
                "must_change_password": self.must_change_password}


class LoginRefused(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("too many failed sign-ins; try again later" if retry_after
                         else "wrong username or password")
        self.retry_after = retry_after


async def login(store: Store, settings: Settings, username: str, password: str,
                address: str, actor: audit.Actor | None = None) -> tuple[str, Principal]:
    """Check credentials; returns (cookie value, principal) or raises LoginRefused.

    Only a wrong password (or unknown or disabled user) counts, and only once
    checked: a right one never does, however many arrive at once. Failures are
    counted per username and per client address in the database, so every
    instance shares them; a key that reaches its limit is locked, and a locked
    key is refused before any password is checked. So that a parallel burst of
    guesses cannot all be checked before the first failures are counted, the
    checks of one key run one after another in this process (see `_one_at_a_time`).
    The argon2 check runs in a thread and outside any write transaction, so a
    sign-in never holds the database's write lock for it.

    With `actor` (the address and request, `audit.Actor`), the sign-in is recorded in
    the audit trail in its session's transaction, a failure in its count's (a refusal
    of a locked key, which writes nothing, is not).
    """
    keys = [f"user:{username.lower()[:100]}", f"addr:{address[:100]}"]
    async with _one_at_a_time(keys):
        async with store.read() as conn:
            wait = await _locked_for(conn, keys)
        if wait:
            raise LoginRefused(retry_after=wait)
        async with store.read() as conn:
            row = (await conn.execute(sa.select(_u).where(_u.c.username == username))).first()
        ok = await run_in_threadpool(verify_password, password,
                                     row.password_hash if row else None)
        ok = ok and row is not None and not row.disabled
        if not ok:
            async with store.begin() as conn:
                wait = await _count_failure(conn, settings, keys)
                if actor is not None:
                    await audit.record(conn, actor, "auth.sign_in_failed", "user",
                                       row.id if row is not None else None,
                                       {"locked": True} if wait else None)
            raise LoginRefused(retry_after=wait)
    assert row is not None
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    async with store.begin() as conn:
        # The username's failures start again; a lock set meanwhile stays.
        await conn.execute(sa.delete(_th).where(
            _th.c.key == keys[0], sa.or_(_th.c.locked_until.is_(None), _th.c.locked_until <= now)))
        await conn.execute(sa.insert(_s).values(
            id=hash_secret(token), user_id=row.id, csrf_token=csrf, created_at=now,
            last_seen_at=now))
        if actor is not None:
            await audit.record(conn, dataclasses.replace(
                actor, user_id=row.id, username=row.username, role=row.role),
                "auth.sign_in", "user", row.id)
    return token, Principal(hash_secret(token), csrf, row.id, row.username, row.role,
                            row.must_change_password, row.display_name)


_SESSION = (sa.select(_s, _u.c.username, _u.c.role, _u.c.disabled, _u.c.must_change_password,
                      _u.c.display_name)
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
    return Principal(session_id, row.csrf_token, row.user_id, row.username, row.role,
                     row.must_change_password, row.display_name)


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


#: Sign-in checks under way in this process, per throttle key: the lock and its users.
_key_locks: dict[str, tuple[asyncio.Lock, int]] = {}


@contextlib.asynccontextmanager
async def _one_at_a_time(keys: list[str]) -> AsyncIterator[None]:
    """Hold each key's lock (in a fixed order, so never a deadlock).

    A check of a key waits for the one before it, which has counted its failure by
    then: of a burst of wrong guesses only the key's limit is ever checked. With
    several instances, each checks at most one guess per key at a time, so a burst
    spread over N instances gets at most N - 1 checks beyond the limit.
    """
    async with contextlib.AsyncExitStack() as stack:
        for key in sorted(set(keys)):
            lock, users = _key_locks.get(key) or (asyncio.Lock(), 0)
            _key_locks[key] = (lock, users + 1)
            stack.callback(_let_go, key)
            await stack.enter_async_context(lock)
        yield


def _let_go(key: str) -> None:
    lock, users = _key_locks[key]
    if users == 1:
        del _key_locks[key]
    else:
        _key_locks[key] = (lock, users - 1)


async def _locked_for(conn: AsyncConnection, keys: list[str]) -> float | None:
    """Seconds until every key's lock has ended; None when none is locked."""
    now = utcnow()
    ends = (await conn.execute(sa.select(_th.c.locked_until).where(
        _th.c.key.in_(keys), _th.c.locked_until > now))).scalars()
    return max(((end - now).total_seconds() for end in ends), default=0.0) or None


async def _count_failure(conn: AsyncConnection, settings: Settings,
                         keys: list[str]) -> float | None:
    """Count one failed sign-in per key (username, address); seconds to wait when locked.

    A key is locked when its failures within the window reach its limit; an address
    gets more room than a username (several people behind one NAT). Runs in a write
    transaction: the row locks serialise concurrent failures, from any instance. A
    failure on a key another instance locked meanwhile is refused and not counted.
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
    wait = max(((r.locked_until - now).total_seconds() for r in rows.values()
                if r.locked_until is not None and r.locked_until > now), default=0.0)
    if wait:
        return wait
    for key, row in rows.items():
        fresh = now - row.first_failure_at >= window or row.locked_until is not None
        failures = 1 if fresh else row.failures + 1
        await conn.execute(sa.update(_th).where(_th.c.key == key).values(
            failures=failures, first_failure_at=now if fresh else row.first_failure_at,
            locked_until=now + window if failures >= limits[key] else None))
    return None
