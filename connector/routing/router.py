"""Automatic assignment: queued tickets to available agents (`CONNECTOR_ROUTING=auto`).

One pass (`route_sync`) is one write transaction:

1. On PostgreSQL it takes a transaction-level advisory lock first, so passes of
   several instances run one after the other (on SQLite every write
   transaction is exclusive already); each pass reads what the one before
   committed.
2. It reads the available agents (`agents.available_sync`) and the queued
   tickets, oldest handover first, a page of `BATCH` at a time until no agent
   has room or the queue ends: a ticket someone can take is never held up
   behind a page of tickets nobody can take yet (skills, before the fallback).
3. For each ticket: the agents with free capacity whose skills match (all of
   them once the ticket has waited `CONNECTOR_ROUTING_FALLBACK_SECONDS` with no
   match), preferring anyone but the agent it was taken from for silence;
   among those the fewest open conversations, then the longest since their last
   assignment. The available agents' rows are locked and their loads counted
   at the start of the pass (an agent's own claim locks the same row), the
   choices are made on those loads, and each ticket is assigned with a
   conditional UPDATE (`assignment.assign_many_sync`): never one ticket to two
   agents, never an agent above capacity, with any number of instances.

`Router` runs passes: when woken (`wake`, called for every stream event that
can change the outcome: a ticket opened or changed, a status or presence
change, on any instance, since the hub sees them all) and every
`TICK_SECONDS` regardless (fallback deadlines, and a bus that is down).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa

from connector.domain import agents, assignment
from connector.realtime.stream import Event
from connector.settings import Settings
from connector.storage import outage
from connector.storage.db import utcnow
from connector.storage.models import Ticket
from connector.storage.store import Store, SyncTx

log = logging.getLogger("connector.routing")

_t = Ticket.__table__

#: The PostgreSQL advisory lock a routing pass holds until it commits.
ROUTING_LOCK_KEY = 0x726F75746552  # "routeR"
#: Tickets read per page, and assigned at most per pass (one transaction); a pass that
#: assigned as many is followed at once by another.
BATCH = 100
TICK_SECONDS = 1.0
#: Stream events after which a pass may assign something.
WAKING_EVENTS = frozenset({"ticket.created", "ticket.updated", "user.status", "presence"})
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Rules:
    capacity: int
    fallback: dt.timedelta

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(settings.agent_capacity,
                   dt.timedelta(seconds=settings.routing_fallback_seconds))


def route_sync(tx: SyncTx, rules: Rules, limit: int = BATCH) -> int:
    """One routing pass (see the module); how many tickets it assigned.

    The available agents' rows are locked and their loads counted once, at the start;
    every choice of the pass is then made in memory on those loads, and the
    assignments are written together (`assignment.assign_many_sync`). An agent's own
    claim waits for the pass on their row; a ticket taken meanwhile by someone not in
    the pool is skipped, which only leaves its chosen agent more room.
    """
    if tx.dialect == "postgresql":
        tx.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ROUTING_LOCK_KEY)))
    now = utcnow()
    candidates = [a for a in agents.available_sync(tx.conn, now, rules.capacity) if a.free > 0]
    pool = {a.id: a for a in agents.lock_many_sync(tx, candidates, rules.capacity)}
    picks: list[tuple[int, agents.Agent, str]] = []
    after: tuple[dt.datetime, int] | None = None
    while pool and len(picks) < limit:
        page = _queued_page(tx, after, limit)
        for ticket in page:
            choice = _choose(ticket, list(pool.values()), now, rules)
            if choice is not None:
                agent, reason = choice
                picks.append((ticket.id, agent, reason))
                agent = dataclasses.replace(agent, load=agent.load + 1, last_assigned_at=now)
                if agent.free > 0:
                    pool[agent.id] = agent
                else:
                    del pool[agent.id]
            if not pool or len(picks) >= limit:
                break
        if len(page) < limit:
            break
        after = (page[-1].opened_at, page[-1].id)
    return len(assignment.assign_many_sync(tx, picks)) if picks else 0


def _queued_page(tx: SyncTx, after: tuple[dt.datetime, int] | None,
                 limit: int) -> list[sa.Row[tuple[object, ...]]]:
    """Up to `limit` queued tickets, oldest handover first, after `after` (opened_at, id)."""
    query = (sa.select(_t.c.id, _t.c.lang, _t.c.category, _t.c.opened_at, _t.c.queued_at,
                       _t.c.avoid_user_id).where(_t.c.state == "queued"))
    if after is not None:
        query = query.where(sa.or_(_t.c.opened_at > after[0], sa.and_(
            _t.c.opened_at == after[0], _t.c.id > after[1])))
    return list(tx.conn.execute(query.order_by(_t.c.opened_at, _t.c.id).limit(limit)).all())


def worth_a_pass_sync(conn: sa.Connection, rules: Rules) -> bool:
    """A read-only look before taking the write turn: is a ticket queued while some
    agent is available with room? Idle instances then take no write lock each tick."""
    if conn.execute(sa.select(_t.c.id).where(_t.c.state == "queued").limit(1)).first() is None:
        return False
    return any(a.free > 0 for a in agents.available_sync(conn, utcnow(), rules.capacity))


def _choose(ticket: sa.Row[tuple[object, ...]], pool: list[agents.Agent], now: dt.datetime,
            rules: Rules) -> tuple[agents.Agent, str] | None:
    matching = [a for a in pool if agents.matches(a.skills, ticket.lang, ticket.category)]
    reason = "routing"
    if not matching:
        waiting_since = ticket.queued_at or ticket.opened_at
        if now - waiting_since < rules.fallback:
            return None
        matching, reason = pool, "fallback"
    preferred = [a for a in matching if a.id != ticket.avoid_user_id] or matching
    best = min(preferred, key=lambda a: (a.load, a.last_assigned_at or _NEVER, a.id))
    return best, reason


class Router:
    """Runs routing passes on this instance (see the module)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.rules = Rules.of(settings)
        self.enabled = settings.routing == "auto"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def saw(self, events: list[Event]) -> None:
        """For the hub: wake on events that may let a ticket be assigned."""
        if any(e.type in WAKING_EVENTS for e in events):
            self._wake.set()

    async def run(self) -> None:
        if not self.enabled:
            return
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                async with self.store.read() as conn:
                    worth_it = await conn.run_sync(worth_a_pass_sync, self.rules)
                if not worth_it:
                    continue
                while await self.store.write(route_sync, self.rules) == BATCH:
                    pass
            except Exception as exc:
                outage.failed(log, "routing", exc)
