"""Transitions made by the system, not a person: routing's assignment, the re-queue of
a ticket whose agent went silent, the resolution of an inactive conversation.

Each is a conditional UPDATE on the state (and assignee) it was decided from, so
a person's action or another instance's sweep that got there first wins and this
one does nothing (returns None). Each is recorded as a transition with no actor
and its `reason`, and is a stream event like a person's action.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from connector.domain import notices
from connector.domain.agents import Agent
from connector.domain.tickets import (
    add_messages,
    announce,
    changed,
    reload,
    select_tickets,
    transition,
)
from connector.domain.transcript import NewMessage
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.models import Conversation, Ticket, TicketTransition, User
from connector.storage.store import SyncTx

_t = Ticket.__table__
_u = User.__table__
_conv = Conversation.__table__
_AT = sa.bindparam("at", type_=UTCDateTime)
_TRANSITIONS = sa.insert(TicketTransition.__table__)

_ASSIGN = sa.update(_t).where(_t.c.id == sa.bindparam("tid"), _t.c.state == "queued").values(
    state="assigned", assignee_id=sa.bindparam("uid"), version=_t.c.version + 1,
    claimed_at=sa.func.coalesce(_t.c.claimed_at, _AT), assigned_at=_AT)
_REQUEUE = sa.update(_t).where(
    _t.c.id == sa.bindparam("tid"), _t.c.state == "assigned",
    _t.c.assignee_id == sa.bindparam("uid"), _t.c.version == sa.bindparam("seen")).values(
    state="queued", assignee_id=None, version=_t.c.version + 1, queued_at=_AT,
    requeues=_t.c.requeues + 1, avoid_user_id=sa.bindparam("uid"))
_RESOLVE = sa.update(_t).where(
    _t.c.id == sa.bindparam("tid"), _t.c.state == "assigned",
    _t.c.version == sa.bindparam("seen")).values(
    state="resolved", resolved_at=_AT, version=_t.c.version + 1)
_CLOSE_CONVERSATION = sa.update(_conv).where(
    _conv.c.id == sa.bindparam("cid"), _conv.c.open_ticket_id == sa.bindparam("tid")).values(
    open_ticket_id=None)


def assign_many_sync(tx: SyncTx, picks: list[tuple[int, Agent, str]]) -> list[int]:
    """Routing's assignments of one pass (ticket id, agent, reason), in few statements:
    one conditional UPDATE per ticket (a ticket claimed meanwhile is skipped), then the
    agents' last assignment, the transitions and the reloaded tickets each in one.
    Returns the ids assigned."""
    now = utcnow()
    done = [(tid, agent, reason) for tid, agent, reason in picks
            if tx.conn.execute(_ASSIGN, {"tid": tid, "uid": agent.id, "at": now}).rowcount == 1]
    if not done:
        return []
    tx.conn.execute(sa.update(_u).where(_u.c.id.in_({a.id for _, a, _ in done})).values(
        last_assigned_at=now))
    tx.conn.execute(_TRANSITIONS, [
        {"ticket_id": tid, "action": "assigned", "from_state": "queued",
         "to_state": "assigned", "actor_id": None, "assignee_id": agent.id, "at": now,
         "reason": reason} for tid, agent, reason in done])
    for tid, _, reason in done:
        announce(tx, tid, "assigned", None, reason)
    loaded = {r.id: dict(r._mapping) for r in tx.conn.execute(
        select_tickets().where(_t.c.id.in_([tid for tid, _, _ in done])))}
    cache = notices.Cache()
    for tid, agent, reason in done:
        ticket = changed(tx, loaded[tid], public=True)
        add_messages(tx, ticket, [NewMessage(
            "system", f"Routed to {agent.username}",
            context={"event": "routed", "reason": reason})])
        notices.assigned_sync(tx, ticket, agent.id, cache)
    return [tid for tid, _, _ in done]


def requeue_silent_sync(tx: SyncTx, ticket_id: int, assignee_id: int, version: int,
                        silent_for: dt.timedelta) -> dict[str, Any] | None:
    """The assignee has not answered for `silent_for`: back to routing, to another agent
    when one is available (`avoid_user_id`)."""
    now = utcnow()
    if tx.conn.execute(_REQUEUE, {"tid": ticket_id, "uid": assignee_id, "seen": version,
                                  "at": now}).rowcount != 1:
        return None
    transition(tx, ticket_id, "requeued", "assigned", "queued", None, None, now,
               reason="agent_silent", previous_assignee_id=assignee_id)
    ticket = changed(tx, reload(tx, ticket_id), assignee_id, public=True)
    minutes = max(1, round(silent_for.total_seconds() / 60))
    add_messages(tx, ticket, [NewMessage(
        "system", f"No answer for {minutes} min: back in the queue",
        context={"event": "requeued", "reason": "agent_silent", "from": assignee_id})],
        extra=[assignee_id])
    return ticket


def resolve_inactive_sync(tx: SyncTx, ticket_id: int, version: int) -> dict[str, Any] | None:
    """Nobody wrote in the assigned conversation for too long: resolved (`inactive`)."""
    now = utcnow()
    before = reload(tx, ticket_id)
    if tx.conn.execute(_RESOLVE, {"tid": ticket_id, "seen": version,
                                  "at": now}).rowcount != 1:
        return None
    tx.conn.execute(_CLOSE_CONVERSATION, {"cid": before["conversation_id"], "tid": ticket_id})
    transition(tx, ticket_id, "resolved", "assigned", "resolved", None,
               before["assignee_id"], now, reason="inactive")
    ticket = reload(tx, ticket_id)
    add_messages(tx, ticket, [NewMessage(
        "system", "Closed after a period without messages",
        context={"event": "resolved", "reason": "inactive"})])
    return changed(tx, ticket)
