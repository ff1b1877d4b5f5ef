"""Nobody forgotten: what happens because time passed, swept every `SWEEP_SECONDS` by
every instance (each change is a conditional UPDATE, so two instances sweeping at
once change each thing once).

* A user `online` whose last console closed `CONNECTOR_PRESENCE_GRACE_SECONDS`
  ago, with none open since, is set `offline`.
* An assigned ticket whose agent has not answered within
  `CONNECTOR_REQUEUE_AFTER_SECONDS` of the assignment or of the end user's latest
  message goes back to routing (`agent_silent`), to another agent when one is
  available.
* An assigned conversation nobody wrote in for
  `CONNECTOR_AUTO_RESOLVE_AFTER_SECONDS` is resolved (`inactive`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from connector.domain import agents, assignment
from connector.settings import Settings
from connector.storage import outage
from connector.storage.db import utcnow
from connector.storage.models import Message, Ticket, User
from connector.storage.store import Store

log = logging.getLogger("connector.routing")

_t = Ticket.__table__
_u = User.__table__
_m = Message.__table__

SWEEP_SECONDS = 2.0


def _latest(kind: str) -> Any:
    return (sa.select(sa.func.max(_m.c.created_at))
            .where(_m.c.ticket_id == _t.c.id, _m.c.kind == kind).scalar_subquery())


_ASSIGNED = sa.select(_t.c.id, _t.c.assignee_id, _t.c.version, _t.c.assigned_at,
                      _t.c.claimed_at, _latest("user").label("last_user"),
                      _latest("agent").label("last_agent")).where(_t.c.state == "assigned")


class Sweeper:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.grace = dt.timedelta(seconds=settings.presence_grace_seconds)
        self.requeue_after = dt.timedelta(seconds=settings.requeue_after_seconds)
        self.resolve_after = dt.timedelta(seconds=settings.auto_resolve_after_seconds)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception as exc:
                outage.failed(log, "routing: sweeping", exc)

    async def sweep(self) -> None:
        now = utcnow()
        async with self.store.read() as conn:
            gone = (await conn.execute(sa.select(_u.c.id).where(
                _u.c.status == "online", _u.c.console_gone_at <= now - self.grace))).scalars()
            gone = list(gone)
            assigned = (await conn.execute(_ASSIGNED)).all() \
                if self.requeue_after or self.resolve_after else []
        for user_id in gone:
            await self.store.write(agents.go_offline_sync, user_id, now - self.grace)
        for row in assigned:
            await self._ticket(row, now)

    async def _ticket(self, row: Any, now: dt.datetime) -> None:
        started = row.assigned_at or row.claimed_at or now
        last_user = row.last_user
        last_agent = row.last_agent
        if self.resolve_after:
            active = max(t for t in (started, last_user, last_agent) if t is not None)
            if now - active >= self.resolve_after:
                await self.store.write(assignment.resolve_inactive_sync, row.id, row.version)
                return
        if self.requeue_after:
            waiting_since = max(started, last_user) if last_user else started
            answered = last_agent is not None and last_agent >= waiting_since
            if not answered and now - waiting_since >= self.requeue_after:
                await self.store.write(assignment.requeue_silent_sync, row.id,
                                       row.assignee_id, row.version, now - waiting_since)
