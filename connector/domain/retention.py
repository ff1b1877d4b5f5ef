"""Retention: what the housekeeping task deletes once it is old enough.

Two rules, each off when its setting is 0:

* `CONNECTOR_RETENTION_BOT_ONLY_DAYS` (default 30): a conversation that never had a
  ticket (the bot answered alone; a Chatlayer Offloading session never handed over)
  and saw nothing for that many days is deleted whole: its messages (their search
  entries follow: SQLite's FTS triggers, PostgreSQL's generated column), the raw
  webhook bodies they came from and those bodies' dedupe keys, the conversation row.
* `CONNECTOR_RETENTION_RESOLVED_DAYS` (default 0, kept): in a conversation with no open
  ticket whose tickets were all closed (resolved or abandoned) before the cutoff, every
  message older than the cutoff is deleted with its deliveries and their attempts, the
  raw bodies and dedupe keys, and the stream events of those tickets; the satisfaction
  comment (free text) is emptied. The ticket rows stay with their timings, transitions,
  labels, scores and the conversation's end user id, so every report
  (`ticket_reports`, `reports`) gives the same figures as before; the ticket CSV loses
  only the comment. Messages after the cutoff (the bot went on talking) stay.

Work is done in transactions of at most `BATCH` rows each, the store's write turn given
back between them, so a purge never holds SQLite's one writer for long: webhooks and
the console write in between. On PostgreSQL the conversations being purged are locked
(`FOR UPDATE SKIP LOCKED`), so a webhook arriving meanwhile waits for one batch at most
and a conversation busy elsewhere is left for the next run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.settings import Settings
from connector.storage.models import (
    Conversation,
    DedupeKey,
    Delivery,
    DeliveryAttempt,
    InboundEvent,
    Message,
    StreamEvent,
    Ticket,
)
from connector.storage.store import Store

log = logging.getLogger("connector.retention")

_conv = Conversation.__table__
_msg = Message.__table__
_t = Ticket.__table__
_d = Delivery.__table__
_da = DeliveryAttempt.__table__
_ev = InboundEvent.__table__
_dk = DedupeKey.__table__
_se = StreamEvent.__table__

#: Rows deleted (or changed) per transaction at most.
BATCH = 500
#: Conversations taken per transaction at most.
CONVERSATIONS = 50
#: The purge runs at the housekeeping's first pass, then this often (its queries scan).
EVERY = dt.timedelta(hours=1)
CLOSED = ("resolved", "abandoned")


@dataclass(slots=True)
class Purged:
    """What one run deleted."""

    conversations: int = 0
    messages: int = 0
    comments: int = 0
    stream_events: int = 0


#: The tickets of the conversation in hand, in the conditions below (an alias: a query
#: may also read `ticket` itself).
_its = _t.alias("its_ticket")


def _has_ticket() -> sa.ColumnElement[bool]:
    return sa.exists().where(_its.c.conversation_id == _conv.c.id)


def bot_only(cutoff: dt.datetime) -> sa.ColumnElement[bool]:
    """A conversation that never had a ticket and saw nothing since `cutoff`."""
    return sa.and_(_conv.c.updated_at < cutoff, ~_has_ticket())


def closed_before(cutoff: dt.datetime) -> sa.ColumnElement[bool]:
    """A conversation with tickets, none open, each closed before `cutoff`."""
    return sa.and_(_conv.c.open_ticket_id.is_(None), _has_ticket(),
                   ~sa.exists().where(_its.c.conversation_id == _conv.c.id, sa.or_(
                       _its.c.resolved_at.is_(None), _its.c.resolved_at >= cutoff,
                       _its.c.state.not_in(CLOSED))))


async def _ids(conn: AsyncConnection, query: sa.Select[tuple[int]]) -> list[int]:
    return list((await conn.execute(query)).scalars().all())


async def drop_messages(conn: AsyncConnection, ids: Sequence[int]) -> None:
    """Delete messages `ids` with their deliveries (and attempts), then the raw webhook
    bodies no remaining message came from, and their dedupe keys."""
    if not ids:
        return
    events = await _ids(conn, sa.select(_msg.c.event_id).distinct().where(
        _msg.c.id.in_(ids), _msg.c.event_id.is_not(None)))
    deliveries = sa.select(_d.c.id).where(_d.c.message_id.in_(ids)).scalar_subquery()
    await conn.execute(sa.delete(_da).where(_da.c.delivery_id.in_(deliveries)))
    await conn.execute(sa.delete(_d).where(_d.c.message_id.in_(ids)))
    await conn.execute(sa.delete(_msg).where(_msg.c.id.in_(ids)))
    await drop_events(conn, events)


async def drop_events(conn: AsyncConnection, ids: Sequence[int]) -> int:
    """Delete the raw webhook bodies `ids` that no message points to, and their dedupe
    keys (a body seen again is then taken as new: it is long past the dedupe window);
    how many bodies were deleted."""
    if not ids:
        return 0
    orphans = (await conn.execute(sa.select(_ev.c.id, _ev.c.integration_id, _ev.c.fingerprint)
                                  .where(_ev.c.id.in_(ids),
                                         ~sa.exists().where(_msg.c.event_id == _ev.c.id)))).all()
    if not orphans:
        return 0
    keys = [(r.integration_id, r.fingerprint) for r in orphans]
    await conn.execute(sa.delete(_dk).where(
        sa.tuple_(_dk.c.integration_id, _dk.c.fingerprint).in_(keys)))
    await conn.execute(sa.delete(_ev).where(_ev.c.id.in_([r.id for r in orphans])))
    return len(orphans)


def _locked(query: sa.Select[tuple[int]], conn: AsyncConnection) -> sa.Select[tuple[int]]:
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=_conv)
    return query


async def _bot_only_batch(conn: AsyncConnection, cutoff: dt.datetime, out: Purged) -> bool:
    """One transaction's work on bot-only conversations; False when none is left."""
    convs = await _ids(conn, _locked(sa.select(_conv.c.id).where(bot_only(cutoff))
                                     .order_by(_conv.c.id).limit(CONVERSATIONS), conn))
    if not convs:
        return False
    messages = await _ids(conn, sa.select(_msg.c.id).where(
        _msg.c.conversation_id.in_(convs)).order_by(_msg.c.id).limit(BATCH))
    await drop_messages(conn, messages)
    out.messages += len(messages)
    if len(messages) < BATCH:  # these conversations have no message left
        await conn.execute(sa.delete(_d).where(_d.c.conversation_id.in_(convs)))
        gone = await conn.execute(sa.delete(_conv).where(_conv.c.id.in_(convs)))
        out.conversations += gone.rowcount or 0
    return True


async def _closed_batch(conn: AsyncConnection, cutoff: dt.datetime, out: Purged) -> bool:
    """One transaction's work on the transcripts of closed conversations."""
    old = sa.and_(_msg.c.conversation_id == _conv.c.id, _msg.c.created_at < cutoff)
    convs = await _ids(conn, _locked(
        sa.select(_conv.c.id).where(closed_before(cutoff), sa.exists().where(old))
        .order_by(_conv.c.id).limit(CONVERSATIONS), conn))
    if not convs:
        return False
    messages = await _ids(conn, sa.select(_msg.c.id).where(
        _msg.c.conversation_id.in_(convs), _msg.c.created_at < cutoff)
        .order_by(_msg.c.id).limit(BATCH))
    await drop_messages(conn, messages)
    out.messages += len(messages)
    return True


def _closed_tickets(cutoff: dt.datetime) -> sa.Select[tuple[int]]:
    return (sa.select(_t.c.id).join(_conv, _conv.c.id == _t.c.conversation_id)
            .where(closed_before(cutoff)))


async def _comments_batch(conn: AsyncConnection, cutoff: dt.datetime, out: Purged) -> bool:
    tickets = await _ids(conn, _closed_tickets(cutoff).where(_t.c.csat_comment.is_not(None))
                         .order_by(_t.c.id).limit(BATCH))
    if tickets:
        await conn.execute(sa.update(_t).where(_t.c.id.in_(tickets)).values(csat_comment=None))
        out.comments += len(tickets)
    return bool(tickets)


async def _stream_batch(conn: AsyncConnection, cutoff: dt.datetime, out: Purged) -> bool:
    events = await _ids(conn, sa.select(_se.c.id).where(
        _se.c.ticket_id.in_(_closed_tickets(cutoff).scalar_subquery())).limit(BATCH))
    if events:
        await conn.execute(sa.delete(_se).where(_se.c.id.in_(events)))
        out.stream_events += len(events)
    return bool(events)


async def purge(store: Store, settings: Settings, now: dt.datetime) -> Purged:
    """Apply both rules as of `now`, `BATCH` rows per transaction, yielding between."""
    out = Purged()
    steps = []
    if settings.retention_bot_only_days:
        steps.append((_bot_only_batch, now - dt.timedelta(days=settings.retention_bot_only_days)))
    if settings.retention_resolved_days:
        cutoff = now - dt.timedelta(days=settings.retention_resolved_days)
        steps += [(_closed_batch, cutoff), (_comments_batch, cutoff), (_stream_batch, cutoff)]
    for step, cutoff in steps:
        while True:
            async with store.begin() as conn:
                more = await step(conn, cutoff, out)
            if not more:
                break
            await asyncio.sleep(0)  # the write turn goes to whoever queued for it
    if out != Purged():
        log.info("retention: purged %d conversations, %d messages, %d comments, "
                 "%d stream events", out.conversations, out.messages, out.comments,
                 out.stream_events)
    return out
