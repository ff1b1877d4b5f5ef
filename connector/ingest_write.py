"""Writing a batch of validated webhook events: one transaction, a few statements.

Synchronous SQLAlchemy on purpose: the whole batch runs in one hop to the
database thread (SQLite, see `batcher`) or through `run_sync` on an async
connection (PostgreSQL), instead of a thread hop per statement. What the
batch emits for the live stream is appended in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connector import stream, tickets, transcript
from connector.db import UTCDateTime, dialect_insert, utcnow
from connector.ingest import (
    ChatlayerBody,
    EscalationPayload,
    Inbound,
    Result,
    TurnPayload,
    message_text,
)
from connector.models import Conversation, DedupeKey, InboundEvent, Message, Ticket
from connector.store import SyncTx, Transaction
from connector.stream import Event
from connector.transcript import NewMessage

_dedupe = DedupeKey.__table__
_conv = Conversation.__table__
_inbound = InboundEvent.__table__
_msg = Message.__table__
_ticket = Ticket.__table__


def write(conn: sa.Connection, batch: list[Inbound], window: dt.timedelta,
          ) -> tuple[list[Result], SyncTx]:
    """Apply a batch and append its stream events, in the caller's transaction."""
    tx: SyncTx = Transaction(conn)
    results = apply_batch(tx, batch, window)
    stream.append_sync(conn, tx.events)
    return results, tx


@dataclass(slots=True)
class _Conv:
    id: int
    integration_id: str
    end_user_id: str
    last_seq: int
    open_ticket_id: int | None
    lang: str | None
    platform: str | None


def apply_batch(tx: SyncTx, batch: list[Inbound], window: dt.timedelta) -> list[Result]:
    """Write a batch of events with a fixed handful of statements, in arrival order.

    Statements per batch, whatever its size: one dedupe upsert, one insert of
    the inbound events, one upsert and one locking SELECT of the conversations,
    one SELECT of their open tickets, one insert of the messages, one update
    of the conversations. Opening a ticket (a few percent of turns) adds its
    own statements. Message `seq` is assigned here from the locked rows.
    """
    results: list[Result | None] = [None] * len(batch)
    firsts: dict[tuple[str, str], int] = {}
    for i, inbound in enumerate(batch):
        key = (inbound.integration_id, inbound.fingerprint)
        if key in firsts:
            results[i] = Result("duplicate")
        else:
            firsts[key] = i
    fresh = _first_sightings(tx, list(firsts), window)
    todo = sorted(i for key, i in firsts.items() if key in fresh)
    for key, i in firsts.items():
        if key not in fresh:
            results[i] = Result("duplicate")
    if not todo:
        return results  # type: ignore[return-value]

    now = utcnow()
    known = [batch[i].known for i in todo]
    # RETURNING the key with the id: rows come back in any order and are matched by
    # key (asking for parameter order would make SQLAlchemy insert row by row).
    # The dedupe step admits at most one row per key within the window.
    by_key = {(r.integration_id, r.fingerprint): r.id for r in tx.conn.execute(
        _statement("inbound", tx.dialect),
        [{"integration_id": batch[i].integration_id, "fingerprint": batch[i].fingerprint,
          "source": batch[i].source, "event": batch[i].event,
          "status": "processed" if ok else "ignored", "raw": batch[i].raw,
          "received_at": now} for i, ok in zip(todo, known, strict=True)])}
    event_ids = [by_key[(batch[i].integration_id, batch[i].fingerprint)] for i in todo]

    convs = _conversations(tx, {(batch[i].integration_id, batch[i].end_user_id or "")
                                      for i, ok in zip(todo, known, strict=True) if ok}, now)
    open_tickets = _tickets(tx, {c.open_ticket_id for c in convs.values()
                                       if c.open_ticket_id is not None})
    pending: list[dict[str, Any]] = []
    touched: set[int] = set()
    for i, ok, event_id in zip(todo, known, event_ids, strict=True):
        inbound = batch[i]
        if not ok:
            results[i] = Result("ignored", event_id)
            continue
        conv = convs[(inbound.integration_id, inbound.end_user_id or "")]
        touched.add(conv.id)
        results[i] = _one(tx, inbound, conv, event_id, pending, open_tickets, now)

    if pending:
        ids = {(r.conversation_id, r.seq): r.id for r in tx.conn.execute(
            _statement("messages", tx.dialect),
            [{k: v for k, v in row.items() if k != "_result"} for row in pending])}
        for row in pending:
            row["id"] = ids[(row["conversation_id"], row["seq"])]
            row.pop("_result").messages.append(row["id"])
    for row in pending:
        ticket = open_tickets.get(row["ticket_id"]) if row["ticket_id"] else None
        if ticket is not None:
            tx.emit(Event("message.created", {"ticket": ticket["id"],
                                              "message": transcript.message_dict(row)},
                          ticket["id"], **tickets.audience(ticket)))
    if touched:
        tx.conn.execute(
            _statement("conversation_seq", tx.dialect),
            [{"cid": c.id, "seq": c.last_seq, "lang": c.lang, "platform": c.platform,
              "now": now} for c in convs.values() if c.id in touched])
    return results  # type: ignore[return-value]


def _one(tx: SyncTx, inbound: Inbound, conv: _Conv, event_id: int,
               pending: list[dict[str, Any]], open_tickets: dict[int, dict[str, Any]],
               now: dt.datetime) -> Result:
    """One event's effect on the transcript (queued in `pending`) and its ticket."""
    p = inbound.payload
    new: list[NewMessage] = []
    routing: dict[str, Any] | None = None
    if isinstance(p, TurnPayload):
        context = transcript.context_of(inbound.body["payload"])
        if p.input:
            new.append(NewMessage("user", p.input, context=context, event_id=event_id))
        if p.answer:
            new.append(NewMessage("bot", p.answer, body={"text": p.answer}, context=context,
                                  event_id=event_id))
        _route(conv, p.lang, p.platform)
        if p.need_help:
            routing = {"reason": "need_help", "lang": p.lang, "platform": p.platform,
                       "skill_id": _str(p.skill_id), "category": p.handover_category_name}
    elif isinstance(p, EscalationPayload):
        platform = p.platform or p.plateform
        _route(conv, p.lang, platform)
        routing = {"reason": "escalation_requested", "lang": p.lang, "platform": platform,
                   "skill_id": _str(p.skill_id), "category": p.handover_category_name}
    else:
        assert isinstance(p, ChatlayerBody)
        new.append(NewMessage("bot", message_text(p.message), body=p.message,
                              context={"source": "chatlayer"}, event_id=event_id))
    result = Result("processed", event_id, conv.open_ticket_id)
    _queue(pending, conv, new, result, now)
    if routing is not None and conv.open_ticket_id is None:
        _open(tx, conv, routing, open_tickets, result, pending, now)
    return result


def _open(tx: SyncTx, conv: _Conv, routing: dict[str, Any],
                open_tickets: dict[int, dict[str, Any]], result: Result,
                pending: list[dict[str, Any]], now: dt.datetime) -> None:
    ref = transcript.ConversationRef(conv.id, conv.integration_id, conv.end_user_id, None)
    ticket = tickets.open_ticket(tx, ref, **routing)
    assert ticket is not None
    conv.open_ticket_id = ticket["id"]
    open_tickets[ticket["id"]] = ticket
    result.ticket_id, result.opened = ticket["id"], True
    _queue(pending, conv, [tickets.handover_marker(routing["reason"])], result, now)


def _queue(pending: list[dict[str, Any]], conv: _Conv, new: list[NewMessage], result: Result,
           now: dt.datetime) -> None:
    """Queue messages for the batch's insert, with the conversation's next `seq`."""
    for m in new:
        conv.last_seq += 1
        pending.append({
            "conversation_id": conv.id, "seq": conv.last_seq, "ticket_id": conv.open_ticket_id,
            "kind": m.kind, "author_id": None, "text": _text(m.text), "body": m.body,
            "context": m.context, "event_id": m.event_id, "created_at": now, "_result": result,
        })


def _route(conv: _Conv, lang: str | None, platform: str | None) -> None:
    conv.lang = lang or conv.lang
    conv.platform = platform or conv.platform


def _first_sightings(tx: SyncTx, keys: list[tuple[str, str]],
                     window: dt.timedelta) -> set[tuple[str, str]]:
    """Record fingerprints; returns those not seen within the window (first sightings).

    An upsert that only moves `seen_at` forward for keys older than the window:
    the rows it inserts or moves are returned, the others (duplicates) are not.
    Under concurrent writers (PostgreSQL) the row lock lets exactly one of them
    move a given key. `keys` must hold no duplicates.
    """
    if not keys:
        return set()
    now = utcnow()
    stmt = _statement("dedupe", tx.dialect)
    cutoff = now - window
    rows = tx.conn.execute(stmt, [{"integration_id": i, "fingerprint": f, "seen_at": now,
                                   "cutoff": cutoff} for i, f in keys])
    return {(r[0], r[1]) for r in rows}


def _conversations(tx: SyncTx, keys: set[tuple[str, str]],
                   now: dt.datetime) -> dict[tuple[str, str], _Conv]:
    """Get or create the batch's conversations, locking their rows, in one statement.

    An upsert that always updates returns every row, new or existing, and on
    PostgreSQL takes each row's lock; keys go in sorted order so concurrent
    batches lock in the same order.
    """
    if not keys:
        return {}
    stmt = _statement("conversations", tx.dialect)
    rows = tx.conn.execute(stmt, [
        {"integration_id": i, "end_user_id": u, "last_seq": 0, "created_at": now,
         "updated_at": now} for i, u in sorted(keys)])
    return {(r.integration_id, r.end_user_id): _Conv(*r) for r in rows}


@functools.cache
def _statement(name: str, dialect: str) -> Any:
    """The batch's statements, built once per dialect (building them is not cheap)."""
    if name == "inbound":
        return sa.insert(_inbound).returning(_inbound.c.id, _inbound.c.integration_id,
                                             _inbound.c.fingerprint)
    if name == "messages":
        return sa.insert(_msg).returning(_msg.c.id, _msg.c.conversation_id, _msg.c.seq)
    if name == "conversation_seq":
        return sa.update(_conv).where(_conv.c.id == sa.bindparam("cid")).values(
            last_seq=sa.bindparam("seq"), lang=sa.bindparam("lang"),
            platform=sa.bindparam("platform"),
            updated_at=sa.bindparam("now", type_=UTCDateTime))
    if name == "dedupe":
        stmt = dialect_insert(_dedupe, dialect)
        return stmt.on_conflict_do_update(
            index_elements=["integration_id", "fingerprint"],
            set_={"seen_at": stmt.excluded.seen_at},
            where=_dedupe.c.seen_at < sa.bindparam("cutoff", type_=UTCDateTime),
        ).returning(_dedupe.c.integration_id, _dedupe.c.fingerprint)
    assert name == "conversations"
    stmt = dialect_insert(_conv, dialect)
    return stmt.on_conflict_do_update(
        index_elements=["integration_id", "end_user_id"],
        set_={"updated_at": stmt.excluded.updated_at},
    ).returning(_conv.c.id, _conv.c.integration_id, _conv.c.end_user_id, _conv.c.last_seq,
                _conv.c.open_ticket_id, _conv.c.lang, _conv.c.platform)


def _tickets(tx: SyncTx, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = tx.conn.execute(tickets.select_tickets().where(_ticket.c.id.in_(ids)))
    return {r.id: dict(r._mapping) for r in rows}


def _str(value: Any) -> str | None:
    return None if value is None else _text(str(value))


def _text(value: str) -> str:
    """Text columns cannot hold NUL on PostgreSQL: show it as U+FFFD (the raw body keeps it)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value
