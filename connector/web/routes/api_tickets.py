"""Ticket actions for agents and supervisors: thin wrappers around `tickets`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts import users
from connector.accounts.auth import Principal
from connector.domain import outbox, tickets, transcript
from connector.ingest.inbound import public_raw
from connector.realtime import stream
from connector.realtime.stream import Event
from connector.sources import SECRET_FIELDS
from connector.storage.db import utcnow
from connector.storage.models import InboundEvent, Ticket, TicketTransition, User, UserSession
from connector.web.http import HTTPError
from connector.web.routes.deps import api, body, int_param, query_int
from connector.web.routes.schemas import ResolveIn, TextIn, TransferIn

_t = Ticket.__table__
_u = User.__table__
_sess = UserSession.__table__
_inbound = InboundEvent.__table__
_tr = TicketTransition.__table__

STATES = ("queued", "assigned", "resolved", "abandoned")
ONLINE_WINDOW = dt.timedelta(seconds=90)


def _ticket_error(exc: tickets.TicketError) -> HTTPError:
    code = {404: "not_found", 403: "forbidden", 409: "conflict"}.get(exc.status, "invalid")
    status = 422 if exc.status == 400 else exc.status
    field = exc.detail.get("field")
    fields = [{"field": field, "message": str(exc)}] if field else None
    extra = {k: v for k, v in exc.detail.items() if k != "field"}
    return HTTPError(status, code, str(exc), fields, **extra)


def _visible(principal: Principal, ticket: dict[str, Any] | None) -> dict[str, Any]:
    """The ticket, or the answer to a ticket the principal may not see (`tickets.visible`)."""
    try:
        return tickets.visible(principal.actor, ticket)
    except tickets.TicketError as exc:
        raise _ticket_error(exc) from None


async def _act(request: Request, operation: Any, *args: Any) -> Any:
    """Run a synchronous ticket action in one write hop (`Store.write`)."""
    try:
        return await request.app.state.store.write(operation, *args)
    except tickets.TicketError as exc:
        raise _ticket_error(exc) from None


@api()
async def list_tickets(request: Request, principal: Principal) -> Response:
    state = request.query_params.get("state")
    if state is not None and state not in STATES:
        raise HTTPError(422, "invalid", f"state: must be one of {', '.join(STATES)}",
                        [{"field": "state", "message": f"must be one of {', '.join(STATES)}"}])
    page = query_int(request, "page", 1, 1, 100_000)
    per_page = query_int(request, "per_page", 50, 1, 200)
    query = tickets.select_tickets()
    if state:
        query = query.where(_t.c.state == state)
    if not principal.actor.is_staff:
        query = query.where(sa.or_(_t.c.state == "queued", _t.c.assignee_id == principal.user_id))
    order = _t.c.opened_at.asc() if state == "queued" else _t.c.opened_at.desc()
    async with request.app.state.store.read() as conn:
        cursor = await stream.last_cursor(conn)  # read first: replay after it covers the rest
        total = (await conn.execute(sa.select(sa.func.count()).select_from(
            query.subquery()))).scalar_one()
        rows = (await conn.execute(query.order_by(order, _t.c.id)
                                   .limit(per_page).offset((page - 1) * per_page))).all()
    now = utcnow()
    return JSONResponse({"tickets": [tickets.summary(dict(r._mapping), now) for r in rows],
                         "page": page, "per_page": per_page, "total": total, "cursor": cursor})


@api()
async def get_ticket(request: Request, principal: Principal) -> Response:
    ticket_id = int_param(request, "id")
    async with request.app.state.store.read() as conn:
        ticket = _visible(principal, await tickets.load(conn, ticket_id))
        messages = await transcript.messages_of(conn, ticket["conversation_id"])
        if not principal.actor.is_staff:
            # The bot's history and this ticket, plus earlier tickets the agent handled:
            # another agent's earlier handover (notes included) is not theirs to read.
            own = set((await conn.execute(sa.select(_t.c.id).where(
                _t.c.conversation_id == ticket["conversation_id"],
                _t.c.assignee_id == principal.user_id))).scalars())
            messages = [m for m in messages
                        if m["ticket_id"] in (None, ticket_id) or m["ticket_id"] in own]
        deliveries = await outbox.for_messages(
            conn, [m["id"] for m in messages if m["kind"] == "agent"])
        raws = await _raw_payloads(conn, {m["event_id"] for m in messages if m["event_id"]})
        transitions = (await conn.execute(sa.select(_tr).where(
            _tr.c.ticket_id == ticket_id).order_by(_tr.c.id))).all()
        wanted = {m["author_id"] for m in messages} | {
            t for r in transitions for t in (r.actor_id, r.assignee_id)}
        authors = dict((await conn.execute(sa.select(_u.c.id, _u.c.username).where(
            _u.c.id.in_(wanted - {None})))).all())
    out = tickets.summary(ticket)
    out["messages"] = [
        {**transcript.message_dict(m, author=authors.get(m["author_id"]),
                                   delivery=deliveries.get(m["id"])),
         "raw": raws.get(m["event_id"])}
        for m in messages
    ]
    out["transitions"] = [
        {"action": t.action, "from": t.from_state, "to": t.to_state,
         "actor": authors.get(t.actor_id), "assignee": authors.get(t.assignee_id),
         "at": t.at.isoformat()} for t in transitions]
    return JSONResponse(out)


async def _raw_payloads(conn: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = (await conn.execute(sa.select(_inbound.c.id, _inbound.c.raw).where(
        _inbound.c.id.in_(ids)))).all()
    return {r.id: public_raw(r.raw, SECRET_FIELDS) for r in rows}


@api()
async def claim(request: Request, principal: Principal) -> Response:
    ticket = await _act(request, tickets.claim_sync, int_param(request, "id"), principal.actor)
    return JSONResponse(tickets.summary(ticket))


def _writes(operation: Any) -> Any:
    """A route that adds a text to a ticket: a reply (delivered) or a note (never)."""

    @api()
    async def endpoint(request: Request, principal: Principal) -> Response:
        data = await body(request, TextIn)
        message = await _act(request, operation, int_param(request, "id"), principal.actor,
                             data.text)
        return JSONResponse(message, status_code=201)

    return endpoint


post_message = _writes(tickets.reply_sync)
post_note = _writes(tickets.note_sync)


@api()
async def transfer(request: Request, principal: Principal) -> Response:
    data = await body(request, TransferIn)
    target = None
    if data.to is not None:
        async with request.app.state.store.read() as conn:
            target = await users.by_username(conn, data.to)
        if target is None:
            raise HTTPError(422, "invalid", "to: no such user",
                            [{"field": "to", "message": "no such user"}])
    ticket = await _act(request, tickets.transfer_sync, int_param(request, "id"), principal.actor,
                        target)
    return JSONResponse(tickets.summary(ticket))


@api()
async def resolve(request: Request, principal: Principal) -> Response:
    data = await body(request, ResolveIn)
    ticket = await _act(request, tickets.resolve_sync, int_param(request, "id"), principal.actor,
                        data.closing_message)
    return JSONResponse(tickets.summary(ticket))


@api()
async def resend(request: Request, principal: Principal) -> Response:
    message_id = int_param(request, "id")
    store = request.app.state.store
    async with store.read() as conn:
        ticket_id = await transcript.ticket_of_message(conn, message_id)
        ticket = await tickets.load(conn, ticket_id) if ticket_id else None
    if ticket is None:
        raise HTTPError(404, "not_found", "no such message")
    _visible(principal, ticket)  # a message of a ticket one may not see: as GET answers
    if not (principal.actor.is_staff or ticket["assignee_id"] == principal.user_id):
        raise HTTPError(403, "forbidden", "only the assignee or a supervisor can re-send")
    try:
        async with store.transaction() as tx:
            state = await outbox.resend(tx, message_id)
            tx.emit(Event("delivery.updated", {
                "ticket": ticket["id"], "message_id": message_id, "delivery": state},
                ticket["id"], **tickets.audience(ticket)))
    except outbox.ResendError as exc:
        raise HTTPError(exc.status, "not_found" if exc.status == 404 else "conflict",
                        str(exc)) from None
    return JSONResponse({"message_id": message_id, "delivery": state})


@api("supervisor", "admin")
async def queue(request: Request, principal: Principal) -> Response:
    now = utcnow()
    async with request.app.state.store.read() as conn:
        waiting = (await conn.execute(sa.select(sa.func.count(), sa.func.min(_t.c.opened_at))
                                      .where(_t.c.state == "queued"))).one()
        load = (await conn.execute(
            sa.select(_u.c.username, sa.func.count(_t.c.id))
            .join(_t, sa.and_(_t.c.assignee_id == _u.c.id, _t.c.state == "assigned"))
            .group_by(_u.c.username))).all()
        online = (await conn.execute(
            sa.select(_u.c.username, _u.c.role).distinct()
            .join(_sess, _sess.c.user_id == _u.c.id)
            .where(_sess.c.revoked_at.is_(None), _sess.c.last_seen_at > now - ONLINE_WINDOW,
                   _u.c.disabled.is_(False)))).all()
    hub_online = request.app.state.hub.online_user_ids()
    per_agent = dict(load)
    return JSONResponse({
        "waiting": waiting[0],
        "oldest_wait_seconds": (now - waiting[1]).total_seconds() if waiting[1] else None,
        "tickets_per_agent": per_agent,
        "agents_online": sorted(
            ({"username": u.username, "role": u.role, "open_tickets": per_agent.get(u.username, 0)}
             for u in online), key=lambda a: a["username"]),
        "connected_here": len(hub_online),
    })


@api()
async def agents(request: Request, principal: Principal) -> Response:
    """Colleagues to transfer to: active users with their load and whether online."""
    now = utcnow()
    async with request.app.state.store.read() as conn:
        rows = (await conn.execute(
            sa.select(_u.c.id, _u.c.username, _u.c.role, sa.func.count(_t.c.id).label("load"))
            .outerjoin(_t, sa.and_(_t.c.assignee_id == _u.c.id, _t.c.state == "assigned"))
            .where(_u.c.disabled.is_(False)).group_by(_u.c.id, _u.c.username, _u.c.role)
            .order_by(_u.c.username))).all()
        online = set((await conn.execute(
            sa.select(_sess.c.user_id).distinct().where(
                _sess.c.revoked_at.is_(None), _sess.c.last_seen_at > now - ONLINE_WINDOW)
        )).scalars())
    online |= request.app.state.hub.online_user_ids()
    return JSONResponse({"agents": [
        {"username": r.username, "role": r.role, "open_tickets": r.load,
         "online": r.id in online} for r in rows]})


@api("supervisor", "admin")
async def queue_history(request: Request, principal: Principal) -> Response:
    """Queue length and waiting times per time bucket over the last hours."""
    hours = query_int(request, "hours", 4, 1, 48)
    bucket = query_int(request, "bucket_seconds", 300, 60, 3600)
    now = utcnow()
    since = now - dt.timedelta(hours=hours)
    async with request.app.state.store.read() as conn:
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
    return JSONResponse({"bucket_seconds": bucket, "points": points})


routes = [
    Route("/api/agents", agents, methods=["GET"]),
    Route("/api/queue/history", queue_history, methods=["GET"]),
    Route("/api/tickets", list_tickets, methods=["GET"]),
    Route("/api/tickets/{id:int}", get_ticket, methods=["GET"]),
    Route("/api/tickets/{id:int}/claim", claim, methods=["POST"]),
    Route("/api/tickets/{id:int}/messages", post_message, methods=["POST"]),
    Route("/api/tickets/{id:int}/notes", post_note, methods=["POST"]),
    Route("/api/tickets/{id:int}/transfer", transfer, methods=["POST"]),
    Route("/api/tickets/{id:int}/resolve", resolve, methods=["POST"]),
    Route("/api/messages/{id:int}/resend", resend, methods=["POST"]),
    Route("/api/queue", queue, methods=["GET"]),
]
