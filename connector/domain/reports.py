"""What the console reads: ticket lists, a ticket's transcript, the queue, agents' load.

Read-only queries, each answering one view as the API sends it. Who may read
what follows `roles`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain import labels, ticket_reports, tickets, transcript
from connector.domain.errors import FieldError
from connector.domain.roles import Actor, can_see_sql
from connector.realtime import presence, stream
from connector.storage.db import utcnow
from connector.storage.models import (
    Conversation,
    Integration,
    Ticket,
    TicketLabel,
    User,
    UserSession,
)

_t = Ticket.__table__
_integ = Integration.__table__
_u = User.__table__
_sess = UserSession.__table__
_conv = Conversation.__table__
_tl = TicketLabel.__table__

#: A user with a session used within this window counts as online.
ONLINE_WINDOW = dt.timedelta(seconds=90)


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What a ticket list is narrowed to (each None: any): the assignee's username
    (`agent`; a resolved ticket keeps the agent who had it), a label (`labels.check`),
    the integration, the end user, and UTC dates `start`..`end`, both included, of the
    closing (`resolved_at`) for resolved and abandoned lists, else of the handover
    (`opened_at`)."""

    agent: str | None = None
    label: str | None = None
    integration: str | None = None
    end_user: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None


#: The longest agent, integration or end user filter accepted (longer matches nothing).
MAX_FILTER_TEXT = 200


def _filter_text(name: str, raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_FILTER_TEXT or "\x00" in raw:
        raise FieldError(name, f"must be 1 to {MAX_FILTER_TEXT} characters, no NUL")
    return raw


def _filter_date(name: str, raw: str | None) -> dt.date | None:
    return None if raw is None else ticket_reports.parse_date(name, raw)


def parse_filter(params: Mapping[str, str]) -> TicketFilter:
    """The list filter of the query parameters agent, label, integration, end_user, from
    and to (absent, or an empty agent, integration or end_user: any), or `FieldError`
    naming the parameter at fault (an empty label or date is one)."""
    start, end = _filter_date("from", params.get("from")), _filter_date("to", params.get("to"))
    if start and end and end < start:
        raise FieldError("to", "must be on or after from")
    raw_label = params.get("label")
    return TicketFilter(
        agent=_filter_text("agent", params.get("agent")),
        label=None if raw_label is None else labels.check(raw_label, "label"),
        integration=_filter_text("integration", params.get("integration")),
        end_user=_filter_text("end_user", params.get("end_user")),
        start=start, end=end)


def _narrowed(query: sa.Select[Any], state: str | None, f: TicketFilter) -> sa.Select[Any]:
    if f.agent is not None:
        query = query.where(_t.c.assignee_id == sa.select(_u.c.id).where(
            _u.c.username == f.agent).scalar_subquery())
    if f.label is not None:
        # Through the label's index: the tickets carrying it, not a probe per ticket.
        query = query.where(_t.c.id.in_(sa.select(_tl.c.ticket_id).where(
            _tl.c.label == f.label)))
    if f.integration is not None:
        query = query.where(_t.c.integration_id == f.integration)
    if f.end_user is not None:
        query = query.where(_conv.c.end_user_id == f.end_user)
    at = _t.c.resolved_at if state in CLOSED else _t.c.opened_at
    if f.start is not None:
        query = query.where(at >= dt.datetime.combine(f.start, dt.time(), dt.UTC))
    if f.end is not None and f.end < dt.date.max:
        query = query.where(at < dt.datetime.combine(f.end + dt.timedelta(days=1), dt.time(),
                                                     dt.UTC))
    return query


#: States whose lists are ordered, and filtered by date, on the closing time.
CLOSED = ("resolved", "abandoned")


async def ticket_page(conn: AsyncConnection, actor: Actor, state: str | None, page: int,
                      per_page: int, where: TicketFilter | None = None) -> dict[str, Any]:
    """One page of the tickets `actor` sees (`roles.can_see_sql`; of one state, or all;
    narrowed by `where`), with the total and the stream cursor to resume from: read
    first, so a replay after it covers every change the page may miss. The queue is
    oldest first, resolved and abandoned tickets the latest closed first, the other
    lists newest first. Each ticket carries its labels (`tickets.summary`)."""
    query = tickets.select_tickets().where(can_see_sql(actor))
    if state:
        query = query.where(_t.c.state == state)
    if where is not None:
        query = _narrowed(query, state, where)
    order = (_t.c.opened_at.asc() if state == "queued" else
             _t.c.resolved_at.desc() if state in CLOSED else _t.c.opened_at.desc())
    cursor = await stream.last_cursor(conn)
    # Counted without the columns (the labels' lookup would run for every row).
    total = (await conn.execute(sa.select(sa.func.count()).select_from(
        query.with_only_columns(_t.c.id).subquery()))).scalar_one()
    rows = (await conn.execute(query.order_by(order, _t.c.id.desc() if state in CLOSED
                                              else _t.c.id)
                               .limit(per_page).offset((page - 1) * per_page))).all()
    now = utcnow()
    return {"tickets": [tickets.summary(dict(r._mapping), now) for r in rows],
            "page": page, "per_page": per_page, "total": total, "cursor": cursor}


async def earlier_tickets(conn: AsyncConnection, actor: Actor,
                          ticket: dict[str, Any]) -> list[dict[str, Any]]:
    """The end user's earlier conversations beside `ticket` (one `actor` may see): the
    other tickets of its conversation (same integration and end user) opened before it,
    newest first, as summaries; only those `actor` may open (`roles.can_see_sql`: for
    an agent, the ones they were assigned), as `readable_messages` reads them."""
    query = (tickets.select_tickets().where(
        _t.c.conversation_id == ticket["conversation_id"], _t.c.id < ticket["id"],
        can_see_sql(actor)).order_by(_t.c.opened_at.desc(), _t.c.id.desc()).limit(100))
    now = utcnow()
    return [tickets.summary(dict(r._mapping), now) for r in (await conn.execute(query)).all()]


async def readable_messages(conn: AsyncConnection, actor: Actor,
                            ticket: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of the ticket's conversation `actor` may read, in order: all of them
    for staff; for an agent the bot's history, this ticket's, and those of earlier
    tickets they were assigned (another agent's earlier handover, notes included, is
    not theirs to read)."""
    messages = await transcript.messages_of(conn, ticket["conversation_id"])
    if actor.is_staff:
        return messages
    own = set((await conn.execute(sa.select(_t.c.id).where(
        _t.c.conversation_id == ticket["conversation_id"],
        _t.c.assignee_id == actor.id))).scalars())
    return [m for m in messages
            if m["ticket_id"] in (None, ticket["id"]) or m["ticket_id"] in own]


async def queue_overview(conn: AsyncConnection, connected_here: set[int]) -> dict[str, Any]:
    """The queue now: how many wait and the oldest wait, each agent's open tickets, who
    is online (`online_ids`), and how many users have a console on this instance
    (`connected_here`, the hub's); the waiting tickets grouped by category and by
    language (`by_category`, `by_language`: [{key, waiting, oldest_wait_seconds}], the
    longest wait first, key null for none); each integration's first-response target
    (`first_response_targets`, seconds by integration id) and how many open tickets
    are past theirs unanswered (`first_response_breaches`, `breaching`)."""
    now = utcnow()
    waiting = (await conn.execute(sa.select(sa.func.count(), sa.func.min(_t.c.opened_at))
                                  .where(_t.c.state == "queued"))).one()
    load = (await conn.execute(
        sa.select(_u.c.username, sa.func.count(_t.c.id))
        .join(_t, sa.and_(_t.c.assignee_id == _u.c.id, _t.c.state == "assigned"))
        .group_by(_u.c.username))).all()
    online = (await conn.execute(
        sa.select(_u.c.username, _u.c.role).where(
            _u.c.id.in_(await online_ids(conn)), _u.c.disabled.is_(False)))).all()
    per_agent = dict(load)
    targets = dict((await conn.execute(
        sa.select(_integ.c.id, _integ.c.first_response_target_seconds))).all())
    return {
        "waiting": waiting[0],
        "oldest_wait_seconds": (now - waiting[1]).total_seconds() if waiting[1] else None,
        "tickets_per_agent": per_agent,
        "agents_online": sorted(
            ({"username": u.username, "role": u.role, "open_tickets": per_agent.get(u.username, 0)}
             for u in online), key=lambda a: a["username"]),
        "connected_here": len(connected_here),
        "by_category": await _queue_groups(conn, _t.c.category, now),
        "by_language": await _queue_groups(conn, _t.c.lang, now),
        "first_response_targets": targets,
        **await first_response_breaches(conn, targets, now),
    }


async def _queue_groups(conn: AsyncConnection, column: sa.ColumnElement[Any],
                        now: dt.datetime) -> list[dict[str, Any]]:
    """The waiting tickets by `column`: how many, and the longest wait, longest first."""
    key = sa.func.nullif(column, "")
    rows = (await conn.execute(
        sa.select(key.label("key"), sa.func.count().label("n"),
                  sa.func.min(_t.c.opened_at).label("oldest"))
        .where(_t.c.state == "queued").group_by(key))).all()
    groups = [{"key": r.key, "waiting": r.n,
               "oldest_wait_seconds": max(0.0, (now - r.oldest).total_seconds())}
              for r in rows]
    return sorted(groups, key=lambda g: (-g["oldest_wait_seconds"], g["key"] or ""))


def breached(target: int | None, opened_at: dt.datetime, now: dt.datetime) -> bool:
    """A ticket still unanswered `now` is past its integration's first-response `target`
    (seconds since the handover; none, or not above 0: no target)."""
    return bool(target and target > 0 and (now - opened_at).total_seconds() > target)


async def first_response_breaches(conn: AsyncConnection, targets: dict[str, int],
                                  now: dt.datetime) -> dict[str, Any]:
    """Open tickets (queued or assigned) with no first response yet, past their
    integration's target (`breached`): how many, and their ids."""
    rows = (await conn.execute(
        sa.select(_t.c.id, _t.c.integration_id, _t.c.opened_at).where(
            _t.c.state.in_(("queued", "assigned")), _t.c.first_response_at.is_(None))
        .order_by(_t.c.id))).all()
    ids = [r.id for r in rows if breached(targets.get(r.integration_id), r.opened_at, now)]
    return {"first_response_breaches": len(ids), "breaching": ids}


async def online_ids(conn: AsyncConnection) -> set[int]:
    """Users online: with a console open on any instance (`realtime.presence`), or a
    session used within `ONLINE_WINDOW`."""
    recent = set((await conn.execute(
        sa.select(_sess.c.user_id).distinct().where(
            _sess.c.revoked_at.is_(None), _sess.c.last_seen_at > utcnow() - ONLINE_WINDOW)
    )).scalars())
    return recent | await presence.online_user_ids(conn)


async def agents(conn: AsyncConnection, default_capacity: int) -> list[dict[str, Any]]:
    """Colleagues to transfer to: active users by name, with their open tickets and whether
    online (`online_ids`); their status, capacity (`domain.agents`) and whether a
    console of theirs is open (`connected`)."""
    rows = (await conn.execute(
        sa.select(_u.c.id, _u.c.username, _u.c.role, _u.c.status, _u.c.display_name,
                  _u.c.max_concurrent, sa.func.count(_t.c.id).label("load"),
                  sa.func.min(_t.c.opened_at).label("oldest"))
        .outerjoin(_t, sa.and_(_t.c.assignee_id == _u.c.id, _t.c.state == "assigned"))
        .where(_u.c.disabled.is_(False))
        .group_by(_u.c.id, _u.c.username, _u.c.role, _u.c.status, _u.c.display_name,
                  _u.c.max_concurrent)
        .order_by(_u.c.username))).all()
    online = await online_ids(conn)
    connected = await presence.online_user_ids(conn)
    now = utcnow()
    return [{"username": r.username, "role": r.role, "open_tickets": r.load,
             "online": r.id in online, "status": r.status, "connected": r.id in connected,
             "display_name": r.display_name or r.username,
             "max_concurrent": r.max_concurrent or default_capacity,
             "oldest_open_seconds": (now - r.oldest).total_seconds() if r.oldest else None}
            for r in rows]


async def queue_history(conn: AsyncConnection, hours: int, bucket: int) -> dict[str, Any]:
    """Queue length and waiting times per `bucket` seconds over the last `hours`: at each
    bucket's end, the tickets waiting and the oldest wait, and the mean wait of those
    claimed within the bucket."""
    now = utcnow()
    since = now - dt.timedelta(hours=hours)
    rows = (await conn.execute(sa.select(_t.c.opened_at, _t.c.claimed_at, _t.c.resolved_at)
                               .where(sa.or_(_t.c.resolved_at.is_(None),
                                             _t.c.resolved_at >= since)))).all()
    points = []
    steps = int((now - since).total_seconds() // bucket) + 1
    for i in range(steps):
        at = since + dt.timedelta(seconds=i * bucket)
        waiting = [r for r in rows if r.opened_at <= at
                   and (r.claimed_at is None or r.claimed_at > at)
                   and (r.resolved_at is None or r.resolved_at > at)]
        claimed = [(r.claimed_at - r.opened_at).total_seconds() for r in rows
                   if r.claimed_at is not None and at - dt.timedelta(seconds=bucket)
                   < r.claimed_at <= at]
        points.append({
            "at": at.isoformat(), "waiting": len(waiting),
            "oldest_wait_seconds": max(((at - r.opened_at).total_seconds() for r in waiting),
                                       default=0.0),
            "mean_wait_seconds": sum(claimed) / len(claimed) if claimed else None})
    return {"bucket_seconds": bucket, "points": points}
