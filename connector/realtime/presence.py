"""Who has a console open, for the whole cluster.

Each instance records, in the `console_presence` table, one row per user with
at least one console socket on it, and refreshes the rows' `seen_at` every
`REFRESH_SECONDS`. A user is online while any row of theirs was seen within
`LIVE_FOR`. The database is the truth; the `presence` stream events that tell
consoles about it are emitted in the transaction that changes it:

* online when a user's first row in the cluster is written, offline when their
  last one is deleted. Each such transaction first locks the user's `app_user`
  row (`FOR UPDATE`; on SQLite every write transaction is exclusive), so two
  instances changing one user's presence at once are serialised and exactly
  one of them announces the change.
* An instance that died (kill -9, lost power) leaves rows that stop being
  refreshed. Every instance deletes rows not seen within `LIVE_FOR`, one per
  transaction, and announces offline the users left with no live row: a dead
  instance's users go offline within `LIVE_FOR + REFRESH_SECONDS`.
* An instance whose rows were deleted while it was stalled writes them again
  on its next refresh (and announces those users online again).

Within one instance the sockets are counted in memory (`_sockets`); one
`asyncio.Lock` per user (kept for every user who ever connected) serialises
that user's transactions, each of which brings the row in line with the count
at that moment, so a connect and a disconnect racing each other always leave
the row as the sockets are.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain.events import presence
from connector.domain.roles import Actor
from connector.storage import outage
from connector.storage.db import dialect_insert, utcnow
from connector.storage.models import ConsolePresence, User
from connector.storage.store import Store, SyncTx

log = logging.getLogger("connector.realtime")

_p = ConsolePresence.__table__
_u = User.__table__

#: How often an instance refreshes its rows and looks for other instances' stale ones.
REFRESH_SECONDS = 10.0
#: A row not refreshed for this long belongs to an instance that is gone.
LIVE_FOR = dt.timedelta(seconds=30)

_LOCK_USER = sa.select(_u.c.id, _u.c.username, _u.c.role).where(
    _u.c.id == sa.bindparam("uid")).with_for_update()


def new_instance_id() -> str:
    """A random id for one run of one instance (32 characters)."""
    return secrets.token_hex(16)


def _live_rows(user_id: int, now: dt.datetime, *, besides: str | None = None) -> Any:
    query = sa.select(sa.func.count()).select_from(_p).where(
        _p.c.user_id == user_id, _p.c.seen_at > now - LIVE_FOR)
    if besides is not None:
        query = query.where(_p.c.instance_id != besides)
    return query


def _record_sync(tx: SyncTx, instance: str, user_id: int, here: bool) -> bool:
    """Make this instance's row for the user exist (`here`) or not; announce the user
    online or offline if nobody else has a live row of theirs. False if the user is gone."""
    now = utcnow()
    user = tx.conn.execute(_LOCK_USER, {"uid": user_id}).first()
    if user is None:
        tx.conn.execute(sa.delete(_p).where(_p.c.user_id == user_id))
        return False
    if here:
        tx.conn.execute(dialect_insert(_p, tx.dialect).values(
            instance_id=instance, user_id=user_id, seen_at=now).on_conflict_do_update(
            index_elements=["instance_id", "user_id"], set_={"seen_at": now}))
    else:
        tx.conn.execute(sa.delete(_p).where(_p.c.instance_id == instance,
                                            _p.c.user_id == user_id))
    if tx.conn.execute(_live_rows(user_id, now, besides=instance)).scalar_one() == 0:
        tx.emit(presence(Actor(user.id, user.username, user.role), here))
        _gone(tx, user_id, None if here else now)
    return True


def _gone(tx: SyncTx, user_id: int, since: dt.datetime | None) -> None:
    """Record when the user's last console closed (None: one is open); the routing
    sweep sets a user gone for the grace period offline."""
    tx.conn.execute(sa.update(_u).where(_u.c.id == user_id).values(console_gone_at=since))


def _reap_sync(tx: SyncTx, instance: str, user_id: int, cutoff: dt.datetime) -> None:
    """Delete another instance's stale row of the user; announce them offline if it was
    their last live one."""
    user = tx.conn.execute(_LOCK_USER, {"uid": user_id}).first()
    gone = tx.conn.execute(sa.delete(_p).where(
        _p.c.instance_id == instance, _p.c.user_id == user_id, _p.c.seen_at <= cutoff))
    if gone.rowcount and user is not None and tx.conn.execute(
            _live_rows(user_id, utcnow())).scalar_one() == 0:
        tx.emit(presence(Actor(user.id, user.username, user.role), False))
        _gone(tx, user_id, utcnow())


async def online_user_ids(conn: AsyncConnection) -> set[int]:
    """Users with a console open on any live instance."""
    return set((await conn.execute(sa.select(_p.c.user_id).distinct().where(
        _p.c.seen_at > utcnow() - LIVE_FOR))).scalars())


class Presence:
    """This instance's part of the cluster's presence (see the module's docstring)."""

    def __init__(self, store: Store, instance: str | None = None) -> None:
        self.store = store
        self.instance = instance or new_instance_id()
        self._sockets: collections.Counter[int] = collections.Counter()
        self._recorded: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}

    def here(self) -> set[int]:
        """Users with a console on this instance."""
        return set(self._sockets)

    async def connected(self, user_id: int) -> None:
        self._sockets[user_id] += 1
        await self._sync(user_id)

    async def disconnected(self, user_id: int) -> None:
        self._sockets[user_id] -= 1
        if self._sockets[user_id] <= 0:
            del self._sockets[user_id]
        await self._sync(user_id)

    async def _sync(self, user_id: int) -> None:
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            here = user_id in self._sockets
            if here != (user_id in self._recorded):
                await self.store.write(_record_sync, self.instance, user_id, here)
                if here:
                    self._recorded.add(user_id)
                else:
                    self._recorded.discard(user_id)

    async def leave(self) -> None:
        """Delete this instance's rows (shutting down), announcing who went offline."""
        self._sockets.clear()
        for user_id in list(self._recorded):
            try:
                await self._sync(user_id)
            except Exception as exc:
                outage.failed(log, f"presence: recording user {user_id} offline", exc)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
                await self.reap()
            except Exception as exc:
                outage.failed(log, "presence: refreshing", exc)

    async def refresh(self) -> None:
        """Mark this instance's rows as seen now; write again any deleted meanwhile."""
        if not self._recorded:
            return
        async with self.store.begin() as conn:
            kept = set((await conn.execute(
                sa.update(_p).where(_p.c.instance_id == self.instance)
                .values(seen_at=utcnow()).returning(_p.c.user_id))).scalars())
        lost = self._recorded - kept
        if lost:
            log.warning("presence: %d console row(s) of this instance were taken for a dead "
                        "instance's (a stall over %d s); writing them again",
                        len(lost), LIVE_FOR.total_seconds())
            self._recorded -= lost
            for user_id in lost:
                await self._sync(user_id)

    async def reap(self) -> None:
        """Delete other instances' rows not seen within `LIVE_FOR`."""
        cutoff = utcnow() - LIVE_FOR
        async with self.store.read() as conn:
            stale = (await conn.execute(sa.select(_p.c.instance_id, _p.c.user_id).where(
                _p.c.seen_at <= cutoff, _p.c.instance_id != self.instance))).all()
        for row in stale:
            await self.store.write(_reap_sync, row.instance_id, row.user_id, cutoff)
