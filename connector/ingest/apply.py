"""Writing a batch of validated webhook events: one transaction, a few statements.

Synchronous SQLAlchemy on purpose: the whole batch runs on the writer
process's own connection (SQLite, see `process`) or through `run_sync` on an
async connection (PostgreSQL, see `batcher`), instead of a hop per statement.
What the batch emits for the live stream is appended in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connector.domain import events, notices, tickets, transcript, webhook_events, webhooks
from connector.domain.roles import audience_tickets
from connector.domain.transcript import NewMessage
from connector.ingest import survey
from connector.ingest.inbound import Inbound, Result
from connector.realtime import stream
from connector.storage.bulk import (
    Bulk,
    BulkUpdate,
    Writer,
    arrays,
    from_driver,
    naive_utc,
    pg_unnest,
)
from connector.storage.db import utcnow
from connector.storage.models import Conversation, DedupeKey, InboundEvent, Message
from connector.storage.store import SyncTx, Transaction

_dedupe = DedupeKey.__table__
_conv = Conversation.__table__
_inbound = InboundEvent.__table__
_msg = Message.__table__


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
    #: A satisfaction survey waiting for its answer (`ingest.survey`).
    survey_ticket_id: int | None
    survey_until: Any


def apply_batch(tx: SyncTx, batch: list[Inbound], window: dt.timedelta) -> list[Result]:
    """Write a batch of events with a fixed handful of statements, in arrival order.

    Statements per batch, whatever its size: one dedupe upsert, one insert of
    the inbound events (one statement for both on PostgreSQL, `_record`), one
    upsert and one locking SELECT of the conversations, one SELECT of their
    open tickets, one insert of the messages and one update of the
    conversations (one statement for both on PostgreSQL, `_transcript`).
    Opening a ticket (a few percent of turns) adds its
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
    bulk = Writer(tx.conn)
    now = utcnow()
    stamp = bulk.stamp(now)
    by_key = _record(bulk, batch, firsts, now - window, stamp)
    todo = sorted(i for key, i in firsts.items() if key in by_key)
    for key, i in firsts.items():
        if key not in by_key:
            results[i] = Result("duplicate")
    if not todo:
        return results  # type: ignore[return-value]

    known = [batch[i].known for i in todo]
    event_ids = [by_key[(batch[i].integration_id, batch[i].fingerprint)] for i in todo]

    convs = _conversations(bulk, {(batch[i].integration_id, batch[i].end_user_id or "")
                                  for i, ok in zip(todo, known, strict=True) if ok}, stamp)
    open_tickets = audience_tickets(bulk, {c.open_ticket_id for c in convs.values()
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
        results[i] = _one(tx, inbound, conv, event_id, pending, open_tickets, now, stamp)

    messages = [(r["conversation_id"], r["seq"], r["ticket_id"], r["kind"], None, r["text"],
                 bulk.json(r["body"]), bulk.json(r["context"]), r["event_id"], stamp)
                for r in pending]
    sequences = [(c.last_seq, c.lang, c.platform, stamp, c.id)
                 for c in convs.values() if c.id in touched]
    inserted = _transcript(bulk, messages, sequences)
    if pending:
        ids = {(r[1], r[2]): r[0] for r in inserted}
        for row in pending:
            row["id"] = ids[(row["conversation_id"], row["seq"])]
            row.pop("_result").messages.append(row["id"])
    for row in pending:
        ticket = open_tickets.get(row["ticket_id"]) if row["ticket_id"] else None
        if ticket is not None:
            tx.emit(events.message_created(ticket, transcript.message_dict(row)))
    if pending and webhooks.wanted(tx, "message.created"):  # else nothing is read
        webhook_events.messages_created(tx, pending)
    # What the end user is told (`notices`), once the batch's messages and sequence
    # numbers are written: each notice appends after them. One read per integration
    # with a handover in the batch; nothing more when it has no notice set.
    cache = notices.Cache(now=now)
    for result in results:
        if result is not None and result.opened and result.ticket_id is not None:
            notices.queued_sync(tx, open_tickets[result.ticket_id], cache)
    return results  # type: ignore[return-value]


def _one(tx: SyncTx, inbound: Inbound, conv: _Conv, event_id: int,
         pending: list[dict[str, Any]], open_tickets: dict[int, dict[str, Any]],
         now: dt.datetime, stamp: Any) -> Result:
    """One event's effect on the transcript (queued in `pending`) and its ticket. A turn
    answering a satisfaction survey (`ingest.survey`: only with the conversation's
    marker set) is kept on the surveyed ticket, and a rating opens no ticket."""
    result = Result("processed", event_id, conv.open_ticket_id)
    answer = (survey.take(tx, conv, inbound, stamp, now)
              if conv.survey_ticket_id is not None else None)
    if inbound.messages and not (inbound.backfill and conv.last_seq > 0):
        context = inbound.context
        _queue(pending, conv, [NewMessage(kind, text, body, context, event_id=event_id)
                               for kind, text, body in inbound.messages], result, now,
               answer.ticket_id if answer else None)
        if answer is not None:
            open_tickets.setdefault(answer.ticket_id, tickets.reload(tx, answer.ticket_id))
    conv.lang = inbound.lang or conv.lang
    conv.platform = inbound.platform or conv.platform
    if answer is not None and answer.kind == "rating":
        return result
    if inbound.handover is not None and conv.open_ticket_id is None:
        routing = {"reason": inbound.handover, "lang": inbound.lang,
                   "platform": inbound.platform, "skill_id": _str(inbound.skill_id),
                   "category": inbound.category}
        _open(tx, conv, routing, open_tickets, result, pending, now, inbound.handover_context)
    return result


def _open(tx: SyncTx, conv: _Conv, routing: dict[str, Any],
          open_tickets: dict[int, dict[str, Any]], result: Result,
          pending: list[dict[str, Any]], now: dt.datetime,
          context: dict[str, Any] | None = None) -> None:
    ref = transcript.ConversationRef(conv.id, conv.integration_id, conv.end_user_id, None)
    ticket = tickets.open_ticket(tx, ref, **routing)
    assert ticket is not None
    conv.open_ticket_id = ticket["id"]
    conv.survey_ticket_id = conv.survey_until = None  # cleared by `open_ticket`
    open_tickets[ticket["id"]] = ticket
    result.ticket_id, result.opened = ticket["id"], True
    _queue(pending, conv, [tickets.handover_marker(routing["reason"], context)], result, now)


def _queue(pending: list[dict[str, Any]], conv: _Conv, new: list[NewMessage], result: Result,
           now: dt.datetime, ticket_id: int | None = None) -> None:
    """Queue messages for the batch's insert, with the conversation's next `seq`; on its
    open ticket, or on `ticket_id` (a survey's answer)."""
    for m in new:
        conv.last_seq += 1
        pending.append({
            "conversation_id": conv.id, "seq": conv.last_seq,
            "ticket_id": ticket_id or conv.open_ticket_id,
            "kind": m.kind, "author_id": None, "text": _text(m.text), "body": m.body,
            "context": m.context, "event_id": m.event_id, "created_at": now, "_result": result,
        })


def _record(bulk: Writer, batch: list[Inbound], firsts: dict[tuple[str, str], int],
            cutoff: dt.datetime, stamp: Any) -> dict[tuple[str, str], int]:
    """Record the fingerprints of `firsts` (key: its event's index in `batch`), and insert
    the inbound events of those not seen since `cutoff` (first sightings), in batch order:
    their ids by key. The keys left out are duplicates.

    The dedupe step is an upsert that only moves `seen_at` forward for keys seen
    before `cutoff`: it returns the rows it inserts or moves. Under concurrent
    writers (PostgreSQL) the row lock lets exactly one of them move a given key;
    keys go in sorted order, so concurrent batches lock them in one order. On
    PostgreSQL both steps are one statement (`_RECORD_PG`).
    """
    if not firsts:
        return {}
    sightings = [(i, f, stamp) for i, f in sorted(firsts)]
    order = sorted(firsts.values())

    def row(i: int) -> tuple[Any, ...]:
        b = batch[i]
        return (b.integration_id, b.fingerprint, b.source, b.event,
                "processed" if b.known else "ignored", b.raw, stamp)

    if bulk.arrays:
        sql, to_dedupe, to_inbound, back = _RECORD_PG
        rows = bulk.run_postgresql(sql, [*arrays(to_dedupe, sightings), naive_utc(cutoff),
                                         *arrays(to_inbound, [row(i) for i in order])], back)
    else:
        fresh = {(r[0], r[1]) for r in bulk.run(_DEDUPE, sightings, where=cutoff)}
        # RETURNING the key with the id: rows come back in any order and are matched by key.
        rows = bulk.run(_INBOUND, [row(i) for i in order
                                   if (batch[i].integration_id, batch[i].fingerprint) in fresh])
    return {(r[1], r[2]): r[0] for r in rows}


def _transcript(bulk: Writer, messages: list[tuple[Any, ...]],
                sequences: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Insert `messages` (`_MESSAGES` rows) and update the conversations' sequence numbers,
    language and platform (`_SEQ` rows): the messages' RETURNING rows. One statement for
    both on PostgreSQL (`_TRANSCRIPT_PG`)."""
    if bulk.arrays and messages and sequences:
        sql, to_messages, to_sequences, back = _TRANSCRIPT_PG
        return bulk.run_postgresql(sql, [*arrays(to_messages, messages),
                                         *arrays(to_sequences, sequences)], back)
    inserted = bulk.run(_MESSAGES, messages)
    bulk.update(_SEQ, sequences)
    return inserted


def _conversations(bulk: Writer, keys: set[tuple[str, str]],
                   stamp: Any) -> dict[tuple[str, str], _Conv]:
    """Get or create the batch's conversations, locking their rows, in one statement.

    An upsert that always updates returns every row, new or existing, and on
    PostgreSQL takes each row's lock; keys go in sorted order so concurrent
    batches lock in the same order.
    """
    if not keys:
        return {}
    rows = bulk.run(_CONVERSATIONS, [(i, u, 0, stamp, stamp) for i, u in sorted(keys)])
    return {(r[1], r[2]): _Conv(*r) for r in rows}


_INBOUND = Bulk(_inbound, ("integration_id", "fingerprint", "source", "event", "status", "raw",
                           "received_at"), returning=("id", "integration_id", "fingerprint"))
_MESSAGES = Bulk(_msg, ("conversation_id", "seq", "ticket_id", "kind", "author_id", "text",
                        "body", "context", "event_id", "created_at"),
                 returning=("id", "conversation_id", "seq"))
_DEDUPE = Bulk(_dedupe, ("integration_id", "fingerprint", "seen_at"),
               returning=("integration_id", "fingerprint"),
               on_conflict=("integration_id", "fingerprint"), update=("seen_at",),
               update_where="seen_at", where_param="cutoff")
_SEQ = BulkUpdate(_conv, "id", ("last_seq", "lang", "platform", "updated_at"))


def _record_pg() -> tuple[str, list[Any], list[Any], list[Any]]:
    """`_DEDUPE` then `_INBOUND` for the rows it returned, as one PostgreSQL statement:
    `$1..$3` the sightings, `$4` the cutoff, then the inbound rows' arrays; and the
    converters of each part's values and of what it returns."""
    dedupe, to_dedupe, _ = _DEDUPE.postgresql
    columns = _INBOUND.columns
    unnest, to_inbound = pg_unnest(_inbound, columns, len(_DEDUPE.columns) + 2)
    names = ", ".join(columns)
    # Names come from the table definitions, values are all parameters: nothing from input.
    sql = (f"WITH d AS ({dedupe}) INSERT INTO {_inbound.name} ({names}) "  # noqa: S608
           f"SELECT {', '.join('u.' + c for c in columns)} "
           f"FROM {unnest} WITH ORDINALITY AS u({names}, n) "
           "JOIN d ON d.integration_id = u.integration_id AND d.fingerprint = u.fingerprint "
           f"ORDER BY u.n RETURNING {', '.join(_INBOUND.returning)}")
    return sql, to_dedupe, to_inbound, from_driver(_inbound, _INBOUND.returning)


_RECORD_PG = _record_pg()
#: Always updates, so every row comes back (and is locked on PostgreSQL).
_CONVERSATIONS = Bulk(_conv, ("integration_id", "end_user_id", "last_seq", "created_at",
                              "updated_at"),
                      returning=("id", "integration_id", "end_user_id", "last_seq",
                                 "open_ticket_id", "lang", "platform", "survey_ticket_id",
                                 "survey_until"),
                      on_conflict=("integration_id", "end_user_id"), update=("updated_at",))


def _transcript_pg() -> tuple[str, list[Any], list[Any], list[Any]]:
    """`_SEQ` and `_MESSAGES` as one PostgreSQL statement (the update a data-modifying
    CTE, run whether or not it is read): the messages' arrays first, then the updates';
    and the converters of each part's values and of what the insert returns."""
    insert, to_messages, back = _MESSAGES.postgresql
    update, to_sequences = _SEQ.postgresql_from(len(_MESSAGES.columns) + 1)
    return f"WITH s AS ({update}) {insert}", to_messages, to_sequences, back


_TRANSCRIPT_PG = _transcript_pg()


def _str(value: str | None) -> str | None:
    return None if value is None else _text(value)


def _text(value: str) -> str:
    """Text columns cannot hold NUL on PostgreSQL: show it as U+FFFD (the raw body keeps it)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value
