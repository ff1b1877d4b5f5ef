"""Ticket actions for agents and supervisors: thin wrappers around `tickets` and
`reports` (domain refusals are answered by `api`, as `connector.web.errors` says)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts import users
from connector.accounts.auth import Principal
from connector.domain import labels, outbox, reports, ticket_audit, tickets, transcript
from connector.domain.roles import STAFF
from connector.ingest.inbound import public_raw
from connector.sources import SECRET_FIELDS
from connector.storage.models import InboundEvent, TicketTransition, User
from connector.web import idempotency
from connector.web.http import HTTPError
from connector.web.routes.deps import api, audit_actor, body, int_param, query_int
from connector.web.routes.schemas import (
    HandbackIn,
    ReplyIn,
    ResolveIn,
    TextIn,
    TicketPatchIn,
    TransferIn,
)

_u = User.__table__
_inbound = InboundEvent.__table__
_tr = TicketTransition.__table__


async def _act(request: Request, operation: Any, *args: Any) -> Any:
    """Run a synchronous ticket action in one write hop (`Store.write`)."""
    return await request.app.state.store.write(operation, *args)


@api()
async def list_tickets(request: Request, principal: Principal) -> Response:
    state = request.query_params.get("state")
    if state is not None and state not in tickets.STATES:
        states = ", ".join(tickets.STATES)
        raise HTTPError(422, "invalid", f"state: must be one of {states}",
                        [{"field": "state", "message": f"must be one of {states}"}])
    page = query_int(request, "page", 1, 1, 100_000)
    per_page = query_int(request, "per_page", 50, 1, 200)
    where = reports.parse_filter(request.query_params)
    async with request.app.state.store.read() as conn:
        out = await reports.ticket_page(conn, principal.actor, state, page, per_page, where)
    return JSONResponse(out)


@api()
async def patch_ticket(request: Request, principal: Principal) -> Response:
    """Replace the ticket's labels (`labels.set_sync`: its assignee or staff)."""
    data = await body(request, TicketPatchIn)
    new = labels.check_set(data.labels)
    ticket = await _act(request, labels.set_sync, int_param(request, "id"), principal.actor,
                        new)
    return JSONResponse(tickets.summary(ticket))


@api()
async def ticket_history(request: Request, principal: Principal) -> Response:
    """The end user's earlier tickets of the same conversation that one may open."""
    ticket_id = int_param(request, "id")
    async with request.app.state.store.read() as conn:
        ticket = tickets.visible(principal.actor, await tickets.load(conn, ticket_id))
        earlier = await reports.earlier_tickets(conn, principal.actor, ticket)
    return JSONResponse({"ticket_id": ticket_id, "tickets": earlier})


@api()
async def label_suggestions(request: Request, principal: Principal) -> Response:
    """Labels already used on tickets one may see, starting with `prefix`, most used
    first."""
    prefix = request.query_params.get("prefix", "")
    if len(prefix) > labels.MAX_LENGTH or "\x00" in prefix:
        raise HTTPError(422, "invalid", f"prefix: at most {labels.MAX_LENGTH} characters",
                        [{"field": "prefix",
                          "message": f"at most {labels.MAX_LENGTH} characters"}])
    async with request.app.state.store.read() as conn:
        out = await labels.suggest(conn, principal.actor, prefix)
    return JSONResponse({"labels": out})


@api()
async def get_ticket(request: Request, principal: Principal) -> Response:
    ticket_id = int_param(request, "id")
    async with request.app.state.store.read() as conn:
        ticket = tickets.visible(principal.actor, await tickets.load(conn, ticket_id))
        messages = await reports.readable_messages(conn, principal.actor, ticket)
        # Replies, and the notices sent to the end user in the bot's name (`notices`).
        # and the handback to the bot (a system message with a delivery).
        deliveries = await outbox.for_messages(
            conn, [m["id"] for m in messages if m["kind"] in ("agent", "bot", "system")
                   and m["event_id"] is None])
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
         "at": t.at.isoformat(), "reason": t.reason} for t in transitions]
    return JSONResponse(out)


async def _raw_payloads(conn: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = (await conn.execute(sa.select(_inbound.c.id, _inbound.c.raw).where(
        _inbound.c.id.in_(ids)))).all()
    return {r.id: public_raw(r.raw, SECRET_FIELDS) for r in rows}


@api()
async def claim(request: Request, principal: Principal) -> Response:
    ticket = await _act(request, tickets.claim_sync, int_param(request, "id"), principal.actor,
                        request.app.state.settings.agent_capacity)
    return JSONResponse(tickets.summary(ticket))


@api()
async def post_message(request: Request, principal: Principal) -> Response:
    """A reply, text or rich (`tickets.reply_sync`), delivered to the end user; once per
    `Idempotency-Key` when the request has one (`web.idempotency`)."""
    data = await body(request, ReplyIn)
    return await idempotency.respond(request, principal, data, 201, tickets.reply_sync,
                                     int_param(request, "id"), principal.actor, data.text,
                                     data.message)


@api()
async def post_note(request: Request, principal: Principal) -> Response:
    """An internal note (never delivered); once per `Idempotency-Key` as above."""
    data = await body(request, TextIn)
    return await idempotency.respond(request, principal, data, 201, tickets.note_sync,
                                     int_param(request, "id"), principal.actor, data.text)


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
    ticket = await _act(request, ticket_audit.transfer_sync, int_param(request, "id"),
                        principal.actor, target, audit_actor(request, principal))
    return JSONResponse(tickets.summary(ticket))


@api()
async def resolve(request: Request, principal: Principal) -> Response:
    data = await body(request, ResolveIn)
    window = dt.timedelta(seconds=request.app.state.settings.csat_window_seconds)
    ticket = await _act(request, tickets.resolve_sync, int_param(request, "id"), principal.actor,
                        data.closing_message, window if data.survey else None)
    return JSONResponse(tickets.summary(ticket))


@api()
async def handback(request: Request, principal: Principal) -> Response:
    """Resolve a Chatlayer Offloading conversation and un-pause its bot
    (`tickets.handback_sync`)."""
    data = await body(request, HandbackIn, optional=True)
    ticket = await _act(request, tickets.handback_sync, int_param(request, "id"),
                        principal.actor, data.closing_message)
    return JSONResponse(tickets.summary(ticket))


@api()
async def resend(request: Request, principal: Principal) -> Response:
    message_id = int_param(request, "id")
    async with request.app.state.store.transaction() as tx:
        state = await ticket_audit.resend(tx, message_id, principal.actor,
                                          audit_actor(request, principal))
    return JSONResponse({"message_id": message_id, "delivery": state})


@api(*STAFF)
async def queue(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.read() as conn:
        out = await reports.queue_overview(conn, request.app.state.hub.presence.here())
    return JSONResponse(out)


@api()
async def agents(request: Request, principal: Principal) -> Response:
    """Colleagues to transfer to: active users with their load and whether online."""
    async with request.app.state.store.read() as conn:
        out = await reports.agents(conn, request.app.state.settings.agent_capacity)
    return JSONResponse({"agents": out})


@api(*STAFF)
async def queue_history(request: Request, principal: Principal) -> Response:
    """Queue length and waiting times per time bucket over the last hours."""
    hours = query_int(request, "hours", 4, 1, 48)
    bucket = query_int(request, "bucket_seconds", 300, 60, 3600)
    async with request.app.state.store.read() as conn:
        out = await reports.queue_history(conn, hours, bucket)
    return JSONResponse(out)


routes = [
    Route("/api/agents", agents, methods=["GET"]),
    Route("/api/queue/history", queue_history, methods=["GET"]),
    Route("/api/tickets", list_tickets, methods=["GET"]),
    Route("/api/tickets/{id:int}", get_ticket, methods=["GET"]),
    Route("/api/tickets/{id:int}", patch_ticket, methods=["PATCH"]),
    Route("/api/tickets/{id:int}/history", ticket_history, methods=["GET"]),
    Route("/api/labels", label_suggestions, methods=["GET"]),
    Route("/api/tickets/{id:int}/claim", claim, methods=["POST"]),
    Route("/api/tickets/{id:int}/messages", post_message, methods=["POST"]),
    Route("/api/tickets/{id:int}/notes", post_note, methods=["POST"]),
    Route("/api/tickets/{id:int}/transfer", transfer, methods=["POST"]),
    Route("/api/tickets/{id:int}/resolve", resolve, methods=["POST"]),
    Route("/api/tickets/{id:int}/handback", handback, methods=["POST"]),
    Route("/api/messages/{id:int}/resend", resend, methods=["POST"]),
    Route("/api/queue", queue, methods=["GET"]),
]
