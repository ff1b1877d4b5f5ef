"""The handover ticket state machine. Knows nothing of HTTP.

    queued --claim--> assigned --resolve--> resolved
    queued <--transfer(None)-- assigned --transfer(user)--> assigned
    queued --resolve--> abandoned (closed without an agent ever taking it)

Every transition is a conditional UPDATE on the expected state, so of two
agents claiming at once exactly one row update succeeds; each is recorded in
`ticket_transition` with actor and time. Metrics are measured from the
handover (`opened_at`), never from the start of the bot conversation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector import outbox, transcript
from connector.db import utcnow
from connector.models import Conversation, Ticket, TicketTransition, User
from connector.store import SyncTx, Tx
from connector.stream import Event
from connector.transcript import ConversationRef, NewMessage

_t = Ticket.__table__
_tr = TicketTransition.__table__
_conv = Conversation.__table__
_users = User.__table__

OPEN_STATES = ("queued", "assigned")
STAFF = ("supervisor", "admin")
MAX_TEXT = 4000


class TicketError(Exception):
    status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class NotFound(TicketError):
    status = 404


class Forbidden(TicketError):
    status = 403


class Conflict(TicketError):
    status = 409


@dataclass(slots=True, frozen=True)
class Actor:
    id: int
    username: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def can_see(actor: Actor, ticket: dict[str, Any]) -> bool:
    return actor.is_staff or ticket["state"] == "queued" or ticket["assignee_id"] == actor.id


def metrics(ticket: dict[str, Any], now: dt.datetime | None = None) -> dict[str, float | None]:
    """Seconds, measured from the handover."""
    now = now or utcnow()
    opened = ticket["opened_at"]

    def since(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
        return None if start is None or end is None else (end - start).total_seconds()

    waiting_until = ticket["claimed_at"] or ticket["resolved_at"] or now
    return {
        "wait_seconds": since(opened, waiting_until),
        "first_response_seconds": since(opened, ticket["first_response_at"]),
        "handling_seconds": since(ticket["claimed_at"], ticket["resolved_at"]),
    }


def select_tickets() -> sa.Select[Any]:
    return (
        sa.select(_t, _conv.c.end_user_id, _users.c.username.label("assignee"))
        .join(_conv, _conv.c.id == _t.c.conversation_id)
        .outerjoin(_users, _users.c.id == _t.c.assignee_id)
    )


async def load(conn: AsyncConnection, ticket_id: int, *,
               lock: bool = False) -> dict[str, Any] | None:
    """The ticket with its end user and assignee name.

    `lock` takes the ticket row's lock for the rest of the transaction (on SQLite
    every write transaction is already exclusive), so a check made on it, such as
    "the actor is the assignee", still holds when the write commits.
    """
    query = select_tickets().where(_t.c.id == ticket_id)
    if lock:
        query = query.with_for_update(of=_t)
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row else None


def summary(ticket: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """The JSON shape of a ticket in lists and stream events."""
    return {
        "id": ticket["id"], "state": ticket["state"], "end_user": ticket["end_user_id"],
        "integration_id": ticket["integration_id"], "conversation_id": ticket["conversation_id"],
        "lang": ticket["lang"], "platform": ticket["platform"], "skill_id": ticket["skill_id"],
        "category": ticket["category"], "reason": ticket["reason"],
        "assignee": ticket["assignee"], "assignee_id": ticket["assignee_id"],
        "opened_at": _iso(ticket["opened_at"]), "claimed_at": _iso(ticket["claimed_at"]),
        "first_response_at": _iso(ticket["first_response_at"]),
        "resolved_at": _iso(ticket["resolved_at"]), **metrics(ticket, now),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def audience(ticket: dict[str, Any], *also: int | None) -> dict[str, Any]:
    ids = {i for i in (ticket["assignee_id"], *also) if i is not None}
    return {"public": ticket["state"] == "queued", "user_ids": sorted(ids)}


HANDOVER_LABELS = {"need_help": "The bot asked for a human",
                   "escalation_requested": "Escalation requested"}


def handover_marker(reason: str) -> NewMessage:
    """The system message that marks where the handover began in the transcript."""
    label = HANDOVER_LABELS.get(reason, reason)
    return NewMessage("system", f"{label}: handover started",
                      context={"event": "handover", "reason": reason})


def open_ticket(tx: SyncTx, conv: ConversationRef, *, reason: str, lang: str | None,
                platform: str | None, skill_id: str | None,
                category: str | None) -> dict[str, Any] | None:
    """Open a ticket unless the conversation has one open. Caller holds the row lock.

    Synchronous and three statements with no read-back: it runs inside the
    ingest batch writer. The caller appends `handover_marker(reason)` to the
    transcript with the new ticket's id.
    """
    if conv.open_ticket_id is not None:
        return None
    now = utcnow()
    ticket = {
        "conversation_id": conv.id, "integration_id": conv.integration_id, "state": "queued",
        "assignee_id": None, "reason": reason, "lang": lang, "platform": platform,
        "skill_id": skill_id, "category": category or None, "opened_at": now,
        "claimed_at": None, "first_response_at": None, "resolved_at": None, "version": 1,
    }
    ticket_id = tx.conn.execute(sa.insert(_t).values(**ticket).returning(_t.c.id)).scalar_one()
    tx.conn.execute(
        sa.update(_conv).where(_conv.c.id == conv.id).values(open_ticket_id=ticket_id))
    conv.open_ticket_id = ticket_id
    tx.conn.execute(sa.insert(_tr).values(_transition_row(
        ticket_id, "opened", None, "queued", None, None, now)))
    ticket.update(id=ticket_id, end_user_id=conv.end_user_id, assignee=None)
    tx.emit(Event("ticket.created", {"ticket": summary(ticket)}, ticket_id, public=True))
    return ticket


async def claim(tx: Tx, ticket_id: int, actor: Actor) -> dict[str, Any]:
    now = utcnow()
    result = await tx.conn.execute(
        sa.update(_t).where(_t.c.id == ticket_id, _t.c.state == "queued")
        .values(state="assigned", assignee_id=actor.id, version=_t.c.version + 1,
                claimed_at=sa.func.coalesce(_t.c.claimed_at, now))
    )
    if result.rowcount != 1:
        ticket = await load(tx.conn, ticket_id)
        if ticket is None:
            raise NotFound("no such ticket")
        if ticket["state"] == "assigned" and ticket["assignee_id"] == actor.id:
            return ticket
        if ticket["state"] == "assigned":
            # Who holds it is no secret: the claim went out to every console as ticket.updated.
            raise Conflict("ticket already taken", assignee=ticket["assignee"])
        if not can_see(actor, ticket):
            raise Forbidden("not allowed to see this ticket")
        raise Conflict(f"ticket is {ticket['state']}")
    await _transition(tx, ticket_id, "claimed", "queued", "assigned", actor.id, actor.id)
    ticket = await _changed(tx, ticket_id, public=True)
    await _messages(tx, ticket_id, [NewMessage("system", f"{actor.username} joined",
                                               context={"event": "claimed"})])
    return ticket


async def transfer(tx: Tx, ticket_id: int, actor: Actor, to: User | None) -> dict[str, Any]:
    ticket = await _get(tx.conn, ticket_id, actor)
    if ticket["state"] not in OPEN_STATES:
        raise Conflict(f"ticket is {ticket['state']}")
    if not actor.is_staff and ticket["assignee_id"] != actor.id:
        raise Forbidden("only the assignee or a supervisor can transfer this ticket")
    if to is not None and to.disabled:
        raise Conflict("that user is disabled")
    new_state = "queued" if to is None else "assigned"
    values: dict[str, Any] = {"state": new_state, "assignee_id": to.id if to else None,
                              "version": _t.c.version + 1}
    if to is not None and ticket["claimed_at"] is None:
        values["claimed_at"] = utcnow()
    result = await tx.conn.execute(sa.update(_t).where(
        _t.c.id == ticket_id, _t.c.version == ticket["version"]).values(**values))
    if result.rowcount != 1:
        raise Conflict("ticket changed meanwhile; reload and try again")
    action = "requeued" if to is None else ("assigned" if actor.is_staff and
                                            ticket["assignee_id"] is None else "transferred")
    await _transition(tx, ticket_id, action, ticket["state"], new_state, actor.id,
                      to.id if to else None)
    text = (f"{actor.username} put the ticket back in the queue" if to is None
            else f"{actor.username} assigned the ticket to {to.username}")
    # Every queue shows or drops it when it enters or leaves the queue; an A -> B
    # transfer is only A's, B's and the supervisors' business.
    changed = await _changed(tx, ticket_id, ticket["assignee_id"],
                             public="queued" in (ticket["state"], new_state))
    await _messages(tx, ticket_id, [NewMessage("system", text, context={"event": action})],
                    extra=[ticket["assignee_id"]])
    return changed


async def reply(tx: Tx, ticket_id: int, actor: Actor, text: str) -> dict[str, Any]:
    ticket = await _get(tx.conn, ticket_id, actor)
    if ticket["state"] != "assigned" or ticket["assignee_id"] != actor.id:
        raise Conflict("only the agent assigned to an open ticket can reply")
    text = _check_text(text)
    if ticket["first_response_at"] is None:
        await tx.conn.execute(sa.update(_t).where(_t.c.id == ticket_id)
                              .values(first_response_at=utcnow()))
    return await _agent_message(tx, ticket, actor, text)


async def note(tx: Tx, ticket_id: int, actor: Actor, text: str) -> dict[str, Any]:
    """An internal note: in the transcript, never delivered to the end user."""
    await _get(tx.conn, ticket_id, actor)
    (message,) = await _messages(tx, ticket_id, [NewMessage("note", _check_text(text),
                                                            author_id=actor.id)],
                                 author=actor.username)
    return message


async def resolve(tx: Tx, ticket_id: int, actor: Actor,
                  closing_message: str | None = None) -> dict[str, Any]:
    ticket = await _get(tx.conn, ticket_id, actor)
    if ticket["state"] not in OPEN_STATES:
        raise Conflict(f"ticket is {ticket['state']}")
    if not actor.is_staff and ticket["assignee_id"] != actor.id:
        raise Forbidden("only the assignee or a supervisor can resolve this ticket")
    if closing_message is not None and closing_message.strip():
        if ticket["first_response_at"] is None and ticket["state"] == "assigned":
            await tx.conn.execute(sa.update(_t).where(_t.c.id == ticket_id)
                                  .values(first_response_at=utcnow()))
        await _agent_message(tx, ticket, actor, _check_text(closing_message))
    new_state = "resolved" if ticket["state"] == "assigned" else "abandoned"
    result = await tx.conn.execute(sa.update(_t).where(
        _t.c.id == ticket_id, _t.c.state == ticket["state"]).values(
        state=new_state, resolved_at=utcnow(), version=_t.c.version + 1))
    if result.rowcount != 1:
        raise Conflict("ticket changed meanwhile; reload and try again")
    await tx.conn.execute(sa.update(_conv).where(
        _conv.c.id == ticket["conversation_id"], _conv.c.open_ticket_id == ticket_id
    ).values(open_ticket_id=None))
    await _transition(tx, ticket_id, new_state, ticket["state"], new_state, actor.id,
                      ticket["assignee_id"])
    await _messages(tx, ticket_id, [NewMessage("system", f"{actor.username} closed the ticket",
                                               context={"event": new_state})])
    return await _changed(tx, ticket_id, public=ticket["state"] == "queued")


async def _agent_message(tx: Tx, ticket: dict[str, Any], actor: Actor,
                         text: str) -> dict[str, Any]:
    body = {"text": text}
    (message,) = await _messages(tx, ticket["id"], [NewMessage(
        "agent", text, body=body, author_id=actor.id)], author=actor.username, emit=False)
    delivery = await outbox.enqueue(tx, message, ticket["integration_id"], ticket["end_user_id"])
    message["delivery"] = delivery
    _emit_message(tx, ticket, message)
    return message


async def _messages(tx: Tx, ticket_id: int, new: list[NewMessage], *, author: str | None = None,
                    emit: bool = True, extra: list[int | None] | None = None,
                    ) -> list[dict[str, Any]]:
    ticket = await load(tx.conn, ticket_id)
    assert ticket is not None
    stored = await transcript.append(tx, ticket["conversation_id"], ticket_id, new)
    out = []
    for row in stored:
        message = transcript.message_dict(row, author=author if row["author_id"] else None)
        if emit:
            _emit_message(tx, ticket, message, *(extra or []))
        out.append(message)
    return out


def _emit_message(tx: Tx, ticket: dict[str, Any], message: dict[str, Any], *also: int | None,
                  ) -> None:
    tx.emit(Event("message.created", {"ticket": ticket["id"], "message": message},
                  ticket["id"], **audience(ticket, *also)))


async def _changed(tx: Tx, ticket_id: int, *also: int | None, public: bool = False,
                   ) -> dict[str, Any]:
    ticket = await load(tx.conn, ticket_id)
    assert ticket is not None
    aud = audience(ticket, *also)
    tx.emit(Event("ticket.updated", {"ticket": summary(ticket)}, ticket_id,
                  public=aud["public"] or public, user_ids=aud["user_ids"]))
    return ticket


async def _get(conn: AsyncConnection, ticket_id: int, actor: Actor) -> dict[str, Any]:
    """The ticket, locked for this (write) transaction, if the actor may see it."""
    ticket = await load(conn, ticket_id, lock=True)
    if ticket is None:
        raise NotFound("no such ticket")
    if not can_see(actor, ticket):
        # Same answer for every ticket the actor may not see: nothing about it leaks.
        raise Forbidden("not allowed to see this ticket")
    return ticket


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise TicketError("text must not be empty", field="text")
    if len(text) > MAX_TEXT:
        raise TicketError(f"text is longer than {MAX_TEXT} characters", field="text")
    return text


async def _transition(tx: Tx, ticket_id: int, action: str, from_state: str | None,
                      to_state: str, actor_id: int | None, assignee_id: int | None) -> None:
    await tx.conn.execute(sa.insert(_tr).values(_transition_row(
        ticket_id, action, from_state, to_state, actor_id, assignee_id, utcnow())))


def _transition_row(ticket_id: int, action: str, from_state: str | None, to_state: str,
                    actor_id: int | None, assignee_id: int | None,
                    at: dt.datetime) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "action": action, "from_state": from_state,
            "to_state": to_state, "actor_id": actor_id, "assignee_id": assignee_id, "at": at}
