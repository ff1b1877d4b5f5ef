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
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.channels.chatlayer_actions import HANDBACK
from connector.domain import (
    agents,
    csat,
    events,
    notices,
    outbox,
    rich,
    transcript,
    webhook_events,
    webhooks,
)
from connector.domain.errors import Conflict, Forbidden, Invalid, NotFound
from connector.domain.roles import Actor, can_manage, can_see
from connector.domain.transcript import ConversationRef, NewMessage
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.models import (
    Conversation,
    Integration,
    Ticket,
    TicketLabel,
    TicketTransition,
    User,
)
from connector.storage.store import SyncTx, Tx

_t = Ticket.__table__
_tr = TicketTransition.__table__
_conv = Conversation.__table__
_users = User.__table__
_integ = Integration.__table__
_tl = TicketLabel.__table__

State = Literal["queued", "assigned", "resolved", "abandoned"]
STATES: tuple[State, ...] = get_args(State)
OPEN_STATES = ("queued", "assigned")
MAX_TEXT = 4000


def visible(actor: Actor, ticket: dict[str, Any] | None) -> dict[str, Any]:
    """The ticket, if `actor` may see it (`roles.can_see`): the one check of reading a
    ticket and of every action on one, made before any other, so that a ticket the actor
    may not see gets the same answer whatever it is asked (`NotFound` or `Forbidden`,
    nothing about the ticket)."""
    if ticket is None:
        raise NotFound("no such ticket")
    if not can_see(actor, ticket):
        raise Forbidden("not allowed to see this ticket")
    return ticket


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


#: Joins a ticket's labels in one column (`labels.check` refuses it inside a label).
LABEL_SEP = "\x1f"


def select_tickets() -> sa.Select[Any]:
    """Tickets with their end user, assignee name and labels (`labels_text`: one
    correlated lookup on ticket_label's primary key per row), as `summary` reads them."""
    labels = (sa.select(sa.func.aggregate_strings(_tl.c.label, LABEL_SEP))
              .where(_tl.c.ticket_id == _t.c.id).scalar_subquery().label("labels_text"))
    return (
        sa.select(_t, _conv.c.end_user_id, _users.c.username.label("assignee"), labels,
                  _integ.c.kind.label("integration_kind"))
        .join(_conv, _conv.c.id == _t.c.conversation_id)
        .join(_integ, _integ.c.id == _t.c.integration_id)
        .outerjoin(_users, _users.c.id == _t.c.assignee_id)
    )


_LOAD = select_tickets().where(_t.c.id == sa.bindparam("tid"))
#: The ticket an action starts from: locked for the rest of the transaction (on SQLite
#: every write transaction is already exclusive), so a check made on it, such as "the
#: actor is the assignee", still holds when the write commits; with the integration's
#: channel, for a reply handed straight to the delivery worker.
_LOCKED = (select_tickets().add_columns(_integ.c.channel_url, _integ.c.verify_token)
           .where(_t.c.id == sa.bindparam("tid")).with_for_update(of=_t))
_KIND = sa.select(_integ.c.kind).where(_integ.c.id == sa.bindparam("iid"))
#: The integration kind whose conversations are handed back to their bot on resolve.
OFFLOADING = "chatlayer-offloading"
_AT = sa.bindparam("at", type_=UTCDateTime)
_CLAIM = sa.update(_t).where(_t.c.id == sa.bindparam("tid"), _t.c.state == "queued").values(
    state="assigned", assignee_id=sa.bindparam("uid"), version=_t.c.version + 1,
    claimed_at=sa.func.coalesce(_t.c.claimed_at, _AT), assigned_at=_AT)
#: To a user (`assigned_at` now) or to the queue (`queued_at` now); the other is kept.
_TRANSFER = sa.update(_t).where(
    _t.c.id == sa.bindparam("tid"), _t.c.version == sa.bindparam("seen")).values(
    state=sa.bindparam("to_state"), assignee_id=sa.bindparam("uid"),
    version=_t.c.version + 1, claimed_at=sa.func.coalesce(_t.c.claimed_at, _AT),
    assigned_at=sa.func.coalesce(sa.bindparam("assigned_at", type_=UTCDateTime),
                                 _t.c.assigned_at),
    queued_at=sa.func.coalesce(sa.bindparam("queued_at", type_=UTCDateTime), _t.c.queued_at))
_LAST_ASSIGNED = sa.update(_users).where(_users.c.id == sa.bindparam("uid")).values(
    last_assigned_at=_AT)
_RESOLVE = sa.update(_t).where(
    _t.c.id == sa.bindparam("tid"), _t.c.state == sa.bindparam("from_state")).values(
    state=sa.bindparam("to_state"), resolved_at=_AT, version=_t.c.version + 1)
_FIRST_RESPONSE = sa.update(_t).where(_t.c.id == sa.bindparam("tid")).values(
    first_response_at=_AT)
_CLOSE_CONVERSATION = sa.update(_conv).where(
    _conv.c.id == sa.bindparam("cid"), _conv.c.open_ticket_id == sa.bindparam("tid")).values(
    open_ticket_id=None)
_OPEN = sa.insert(_t).returning(_t.c.id)
#: A new handover also ends any satisfaction survey pending on the conversation (`csat`).
_SET_OPEN = sa.update(_conv).where(_conv.c.id == sa.bindparam("cid")).values(
    open_ticket_id=sa.bindparam("tid"), survey_ticket_id=None, survey_until=None)
_TRANSITION = sa.insert(_tr)


async def load(conn: AsyncConnection, ticket_id: int) -> dict[str, Any] | None:
    """The ticket with its end user and assignee name."""
    row = (await conn.execute(_LOAD, {"tid": ticket_id})).first()
    return dict(row._mapping) if row else None


def load_sync(conn: sa.Connection, ticket_id: int) -> dict[str, Any] | None:
    row = conn.execute(_LOAD, {"tid": ticket_id}).first()
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
        "labels": labels_of(ticket), "csat": csat.of(ticket),
        "integration_kind": ticket.get("integration_kind"),
    }


def labels_of(ticket: dict[str, Any]) -> list[str]:
    """The ticket's labels, sorted: from `labels_text` (`select_tickets`); none for a
    ticket built without it (a new one)."""
    text = ticket.get("labels_text")
    return sorted(text.split(LABEL_SEP)) if text else []


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


HANDOVER_LABELS = {"need_help": "The bot asked for a human",
                   "escalation_requested": "Escalation requested",
                   "offload": "The bot offloaded the conversation"}


def handover_marker(reason: str, context: dict[str, Any] | None = None) -> NewMessage:
    """The system message that marks where the handover began in the transcript, with
    what the bot platform said about it (`handover_context`), if anything."""
    label = HANDOVER_LABELS.get(reason, reason)
    marker: dict[str, Any] = {"event": "handover", "reason": reason}
    if context:
        marker["handover_context"] = context
    return NewMessage("system", f"{label}: handover started", context=marker)


def open_ticket(tx: SyncTx, conv: ConversationRef, *, reason: str, lang: str | None,
                platform: str | None, skill_id: str | None,
                category: str | None) -> dict[str, Any] | None:
    """Open a ticket unless the conversation has one open. Caller holds the row lock.

    Four statements with no read-back: it runs inside the ingest batch writer.
    The caller appends `handover_marker(reason)` to the transcript with the new
    ticket's id.
    """
    if conv.open_ticket_id is not None:
        return None
    now = utcnow()
    ticket = {
        "conversation_id": conv.id, "integration_id": conv.integration_id, "state": "queued",
        "assignee_id": None, "reason": reason, "lang": lang, "platform": platform,
        "skill_id": skill_id, "category": category or None, "opened_at": now,
        "claimed_at": None, "first_response_at": None, "resolved_at": None, "version": 1,
        "queued_at": now,
    }
    ticket_id = tx.conn.execute(_OPEN, ticket).scalar_one()
    tx.conn.execute(_SET_OPEN, {"cid": conv.id, "tid": ticket_id})
    conv.open_ticket_id = ticket_id
    transition(tx, ticket_id, "opened", None, "queued", None, None, now)
    kind = tx.conn.execute(_KIND, {"iid": conv.integration_id}).scalar()
    ticket.update(id=ticket_id, end_user_id=conv.end_user_id, assignee=None,
                  integration_kind=kind)
    tx.emit(events.ticket_created(summary(ticket)))
    return ticket


# The actions are synchronous functions of a `SyncTx`, run in one hop by
# `Store.write`; the async forms below run the same inside an async transaction.

def claim_sync(tx: SyncTx, ticket_id: int, actor: Actor,
               capacity: int | None = None) -> dict[str, Any]:
    """Take a queued ticket. An agent at capacity (`agents.check_capacity_sync`, with
    `capacity` the default) is refused; staff are not counted."""
    if capacity is not None and not actor.is_staff:
        agents.check_capacity_sync(tx, actor.id, capacity)
    now = utcnow()
    result = tx.conn.execute(_CLAIM, {"tid": ticket_id, "uid": actor.id, "at": now})
    if result.rowcount != 1:
        ticket = visible(actor, load_sync(tx.conn, ticket_id))
        if ticket["state"] == "assigned" and ticket["assignee_id"] == actor.id:
            return ticket
        if ticket["state"] == "assigned":
            # Named only to those who may see the ticket (an agent who lost the race
            # was answered 403 above, as a GET of it would be).
            raise Conflict("ticket already taken", assignee=ticket["assignee"])
        raise Conflict(f"ticket is {ticket['state']}")
    transition(tx, ticket_id, "claimed", "queued", "assigned", actor.id, actor.id)
    tx.conn.execute(_LAST_ASSIGNED, {"uid": actor.id, "at": now})
    ticket = changed(tx, reload(tx, ticket_id), public=True)
    add_messages(tx, ticket, [NewMessage("system", f"{actor.username} joined",
                                         context={"event": "claimed"})])
    notices.assigned_sync(tx, ticket, actor.id)
    return ticket


def transfer_sync(tx: SyncTx, ticket_id: int, actor: Actor, to: User | None) -> dict[str, Any]:
    ticket = _get(tx, ticket_id, actor)
    if ticket["state"] not in OPEN_STATES:
        raise Conflict(f"ticket is {ticket['state']}")
    if not can_manage(actor, ticket):
        raise Forbidden("only the assignee or a supervisor can transfer this ticket")
    if to is not None and to.disabled:
        raise Conflict("that user is disabled")
    new_state = "queued" if to is None else "assigned"
    now = utcnow()
    result = tx.conn.execute(_TRANSFER, {
        "tid": ticket_id, "seen": ticket["version"], "to_state": new_state,
        "uid": to.id if to else None, "at": now if to else None,
        "assigned_at": now if to else None, "queued_at": None if to else now})
    if result.rowcount != 1:
        raise Conflict("ticket changed meanwhile; reload and try again")
    action = "requeued" if to is None else ("assigned" if actor.is_staff and
                                            ticket["assignee_id"] is None else "transferred")
    transition(tx, ticket_id, action, ticket["state"], new_state, actor.id,
               to.id if to else None, previous_assignee_id=ticket["assignee_id"])
    text = (f"{actor.username} put the ticket back in the queue" if to is None
            else f"{actor.username} assigned the ticket to {to.username}")
    # Every queue shows or drops it when it enters or leaves the queue; an A -> B
    # transfer is only A's, B's and the supervisors' business.
    moved = changed(tx, reload(tx, ticket_id), ticket["assignee_id"],
                    public="queued" in (ticket["state"], new_state))
    add_messages(tx, moved, [NewMessage("system", text, context={"event": action})],
                 extra=[ticket["assignee_id"]])
    if to is not None:
        tx.conn.execute(_LAST_ASSIGNED, {"uid": to.id, "at": now})
        notices.assigned_sync(tx, moved, to.id)
    return moved


def reply_sync(tx: SyncTx, ticket_id: int, actor: Actor, text: str | None,
               message: dict[str, Any] | None = None) -> dict[str, Any]:
    """The assignee's reply: `text`, or a rich Chatlayer `message` (`rich.check`),
    stored and queued for delivery unchanged; its transcript text is `rich.plain_text`."""
    ticket = _get(tx, ticket_id, actor)
    if ticket["state"] != "assigned" or ticket["assignee_id"] != actor.id:
        raise Conflict("only the agent assigned to an open ticket can reply")
    if message is not None:
        body = rich.check(message)
        text = rich.plain_text(body)
    else:
        text = _check_text(text)
        body = {"text": text}
    if ticket["first_response_at"] is None:
        tx.conn.execute(_FIRST_RESPONSE, {"tid": ticket_id, "at": utcnow()})
    return _agent_message(tx, ticket, actor, text, body)


def note_sync(tx: SyncTx, ticket_id: int, actor: Actor, text: str) -> dict[str, Any]:
    """An internal note: in the transcript, never delivered to the end user."""
    ticket = _get(tx, ticket_id, actor)
    (message,) = add_messages(tx, ticket, [NewMessage("note", _check_text(text),
                                                   author_id=actor.id)], author=actor.username)
    return message


def resolve_sync(tx: SyncTx, ticket_id: int, actor: Actor, closing_message: str | None = None,
                 survey: dt.timedelta | None = None) -> dict[str, Any]:
    """Close the ticket: `resolved` if an agent has it, else `abandoned`. With `survey`
    (the answer window), the satisfaction survey follows the closing message
    (`csat.send_sync`); only for a ticket an agent has (`Conflict` otherwise)."""
    ticket = _get(tx, ticket_id, actor)
    if ticket["state"] not in OPEN_STATES:
        raise Conflict(f"ticket is {ticket['state']}")
    if not can_manage(actor, ticket):
        raise Forbidden("only the assignee or a supervisor can resolve this ticket")
    if survey is not None and ticket["state"] != "assigned":
        raise Conflict("a satisfaction survey is sent only for a ticket an agent took; "
                       "this one would be abandoned")
    if closing_message is not None and closing_message.strip():
        if ticket["first_response_at"] is None and ticket["state"] == "assigned":
            tx.conn.execute(_FIRST_RESPONSE, {"tid": ticket_id, "at": utcnow()})
        _agent_message(tx, ticket, actor, _check_text(closing_message))
    new_state = "resolved" if ticket["state"] == "assigned" else "abandoned"
    result = tx.conn.execute(_RESOLVE, {"tid": ticket_id, "from_state": ticket["state"],
                                        "to_state": new_state, "at": utcnow()})
    if result.rowcount != 1:
        raise Conflict("ticket changed meanwhile; reload and try again")
    tx.conn.execute(_CLOSE_CONVERSATION, {"cid": ticket["conversation_id"], "tid": ticket_id})
    transition(tx, ticket_id, new_state, ticket["state"], new_state, actor.id,
                ticket["assignee_id"])
    closed = reload(tx, ticket_id)
    add_messages(tx, closed, [NewMessage("system", f"{actor.username} closed the ticket",
                                      context={"event": new_state})])
    if survey is not None:
        csat.send_sync(tx, closed, survey)
        closed = reload(tx, ticket_id)
    if ticket["integration_kind"] == OFFLOADING:
        _hand_back(tx, {**closed, "channel_url": ticket["channel_url"],
                        "verify_token": ticket["verify_token"]}, actor)
    return changed(tx, closed, public=ticket["state"] == "queued")


def handback_sync(tx: SyncTx, ticket_id: int, actor: Actor,
                  closing_message: str | None = None) -> dict[str, Any]:
    """Hand a Chatlayer Offloading conversation back to its bot: resolve it (the closing
    message first, if any), then the action that un-pauses the bot, in the same ordered
    delivery (`resolve_sync` does both for such a ticket). `Conflict` for a ticket of
    another kind of integration."""
    ticket = _get(tx, ticket_id, actor)
    if ticket["integration_kind"] != OFFLOADING:
        raise Conflict("only a Chatlayer Offloading conversation can be handed back to "
                       "its bot; resolve this one")
    return resolve_sync(tx, ticket_id, actor, closing_message)


def _hand_back(tx: SyncTx, ticket: dict[str, Any], actor: Actor) -> None:
    """Queue the handback action after everything queued for the conversation so far,
    as a system message whose delivery shows how it went."""
    (message,) = add_messages(tx, ticket, [NewMessage(
        "system", f"{actor.username} handed the conversation back to the bot",
        body=HANDBACK, context={"event": "handback"})], emit=False)
    message["delivery"] = outbox.enqueue(
        tx, message, ticket_id=ticket["id"], integration_id=ticket["integration_id"],
        recipient_id=ticket["end_user_id"], channel_url=ticket["channel_url"],
        verify_token=ticket["verify_token"])
    _emit_message(tx, ticket, message)


async def claim(tx: Tx, ticket_id: int, actor: Actor) -> dict[str, Any]:
    return await tx.run(claim_sync, ticket_id, actor)


async def transfer(tx: Tx, ticket_id: int, actor: Actor, to: User | None) -> dict[str, Any]:
    return await tx.run(transfer_sync, ticket_id, actor, to)


async def reply(tx: Tx, ticket_id: int, actor: Actor, text: str | None,
                message: dict[str, Any] | None = None) -> dict[str, Any]:
    return await tx.run(reply_sync, ticket_id, actor, text, message)


async def note(tx: Tx, ticket_id: int, actor: Actor, text: str) -> dict[str, Any]:
    return await tx.run(note_sync, ticket_id, actor, text)


async def handback(tx: Tx, ticket_id: int, actor: Actor,
                   closing_message: str | None = None) -> dict[str, Any]:
    return await tx.run(handback_sync, ticket_id, actor, closing_message)


async def resolve(tx: Tx, ticket_id: int, actor: Actor, closing_message: str | None = None,
                  survey: dt.timedelta | None = None) -> dict[str, Any]:
    return await tx.run(resolve_sync, ticket_id, actor, closing_message, survey)


async def resend(tx: Tx, message_id: int, actor: Actor) -> dict[str, Any]:
    """Queue a reply's failed delivery again (`outbox.resend`); returns its delivery state.
    A message of a ticket the actor may not see gets the answer a GET of it would."""
    ticket_id = await transcript.ticket_of_message(tx.conn, message_id)
    ticket = await load(tx.conn, ticket_id) if ticket_id else None
    if ticket is None:
        raise NotFound("no such message")
    visible(actor, ticket)
    if not can_manage(actor, ticket):
        raise Forbidden("only the assignee or a supervisor can re-send")
    state = await outbox.resend(tx, message_id)
    tx.emit(events.delivery_updated(ticket, message_id, state))
    return state


def _agent_message(tx: SyncTx, ticket: dict[str, Any], actor: Actor, text: str,
                   body: dict[str, Any] | None = None) -> dict[str, Any]:
    (message,) = add_messages(tx, ticket, [NewMessage(
        "agent", text, body=body or {"text": text}, author_id=actor.id)], author=actor.username,
        emit=False)
    message["delivery"] = outbox.enqueue(
        tx, message, ticket_id=ticket["id"], integration_id=ticket["integration_id"],
        recipient_id=ticket["end_user_id"], channel_url=ticket["channel_url"],
        verify_token=ticket["verify_token"])
    _emit_message(tx, ticket, message)
    return message


def add_messages(tx: SyncTx, ticket: dict[str, Any], new: list[NewMessage], *,
              author: str | None = None, emit: bool = True,
              extra: list[int | None] | None = None) -> list[dict[str, Any]]:
    """Append `new` to the ticket's conversation; events go to the ticket's audience."""
    stored = transcript.append(tx, ticket["conversation_id"], ticket["id"], new)
    out = []
    for row in stored:
        message = transcript.message_dict(row, author=author if row["author_id"] else None)
        if emit:
            _emit_message(tx, ticket, message, *(extra or []))
        out.append(message)
    return out


def _emit_message(tx: SyncTx, ticket: dict[str, Any], message: dict[str, Any],
                  *also: int | None) -> None:
    tx.emit(events.message_created(ticket, message, *also))


def reload(tx: SyncTx, ticket_id: int) -> dict[str, Any]:
    ticket = load_sync(tx.conn, ticket_id)
    assert ticket is not None
    return ticket


def changed(tx: SyncTx, ticket: dict[str, Any], *also: int | None,
             public: bool = False) -> dict[str, Any]:
    tx.emit(events.ticket_updated(summary(ticket), *also, public=public))
    return ticket


def _get(tx: SyncTx, ticket_id: int, actor: Actor) -> dict[str, Any]:
    """The ticket, locked for this transaction (see `_LOCKED`), if the actor may see it."""
    row = tx.conn.execute(_LOCKED, {"tid": ticket_id}).first()
    return visible(actor, dict(row._mapping) if row else None)


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Invalid("text must not be empty", field="text")
    if len(text) > MAX_TEXT:
        raise Invalid(f"text is longer than {MAX_TEXT} characters", field="text")
    return text


def transition(tx: SyncTx, ticket_id: int, action: str, from_state: str | None,
               to_state: str, actor_id: int | None, assignee_id: int | None,
               at: dt.datetime | None = None, reason: str | None = None,
               previous_assignee_id: int | None = None) -> None:
    """Record a transition: by `actor_id`, or by the system (None) for `reason`; and
    `announce` it. Called after the ticket's row was changed."""
    tx.conn.execute(_TRANSITION, {
        "ticket_id": ticket_id, "action": action, "from_state": from_state,
        "to_state": to_state, "actor_id": actor_id, "assignee_id": assignee_id,
        "at": at or utcnow(), "reason": reason})
    announce(tx, ticket_id, action, actor_id, reason, previous_assignee_id)


def announce(tx: SyncTx, ticket_id: int, action: str, actor_id: int | None,
             reason: str | None, previous_assignee_id: int | None = None) -> None:
    """Queue the transition's event webhook (`webhook_events.FOR_ACTION`) in this
    transaction, when a subscription wants it (nothing is read otherwise)."""
    event = webhook_events.FOR_ACTION.get(action)
    if event is None or not webhooks.wanted(tx, event):
        return
    webhook_events.ticket_event(tx, event, summary(reload(tx, ticket_id)), action=action,
                                actor_id=actor_id, reason=reason,
                                previous_assignee_id=previous_assignee_id)
