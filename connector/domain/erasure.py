"""Erasure of one end user of one integration: nothing of their words or id is left.

`scan` first looks, in a read (which blocks no writer), for the rows of the large
tables that carry their id: raw webhook bodies, stream events, event webhook
deliveries. `erase` then runs in one short write transaction (all or nothing) and,
in it:

* every message of their conversation (theirs, the bot's, the agents' and notes, any
  of which may quote them) gets the text `ERASED`, no `body`, no `context`, no link to
  its raw webhook body; the search index follows (SQLite's FTS5 triggers, then an
  `optimize` that rewrites the index without the deleted terms; PostgreSQL's generated
  column);
* the raw webhook bodies of those messages, and every other body of the integration that
  carries their id, are deleted with their dedupe keys;
* their deliveries keep state and timings but lose the message sent (`{}`), the last
  error and their attempts' errors; the recipient becomes the pseudonym;
* the satisfaction comments of their tickets are emptied (the score stays);
* the test sends an admin made to them, the stream events of their tickets and any
  other stream event, event-webhook delivery or stored idempotent answer that carries
  their id, a ticket of theirs or their conversation, are deleted;
* the conversation's end user id becomes a pseudonym `erased-` + 16 random hex digits:
  random, not a hash, so that nobody can tell whether a given id was erased by
  hashing it. Tickets, transitions, labels and scores stay with their timings, so the
  reports keep their figures, now anonymous.

The audit trail records the erasure with the pseudonym and the counts, never the id.
On SQLite, `secure_delete` is on for the transaction, so the freed pages are zeroed.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain import audit
from connector.domain.errors import NotFound
from connector.domain.retention import drop_events
from connector.storage.models import (
    ChannelTestSend,
    Conversation,
    Delivery,
    DeliveryAttempt,
    IdempotentRequest,
    InboundEvent,
    Integration,
    Message,
    StreamEvent,
    Ticket,
    WebhookDelivery,
)

_conv = Conversation.__table__
_msg = Message.__table__
_t = Ticket.__table__
_d = Delivery.__table__
_da = DeliveryAttempt.__table__
_ev = InboundEvent.__table__
_se = StreamEvent.__table__
_ts = ChannelTestSend.__table__
_ir = IdempotentRequest.__table__
_wd = WebhookDelivery.__table__
_integ = Integration.__table__

#: The text an erased message keeps.
ERASED = "[erased]"


@dataclass(slots=True)
class Mentions:
    """Rows of the large tables whose text carries the end user's id (`scan`)."""

    raw_events: list[int]
    stream_events: list[int]
    webhook_deliveries: list[int]


@dataclass(slots=True)
class Erased:
    """What `erase` changed (the API's and the CLI's answer)."""

    integration: str
    #: The conversation's new end user id; None: they had no conversation.
    pseudonym: str | None = None
    messages: int = 0
    tickets: int = 0
    raw_events: int = 0
    deliveries: int = 0
    test_sends: int = 0
    stream_events: int = 0
    webhook_deliveries: int = 0
    idempotent_answers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pseudonym() -> str:
    return "erased-" + secrets.token_hex(8)


def _like(fragment: str) -> str:
    """A LIKE pattern matching `fragment` anywhere (escape character `\\`)."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _json_string(value: str) -> str:
    """`value` as it appears inside a JSON document we stored (orjson, no quotes)."""
    return orjson.dumps(value).decode()[1:-1]


def _mentions(column: Any, fragments: list[str]) -> sa.ColumnElement[bool]:
    text = sa.cast(column, sa.Text)
    return sa.or_(*(text.like(_like(f), escape="\\") for f in fragments))


async def _count(conn: AsyncConnection, statement: Any) -> int:
    return (await conn.execute(statement)).rowcount or 0


async def _ids(conn: AsyncConnection, query: Any) -> list[int]:
    return list((await conn.execute(query)).scalars().all())


def _conversation(conv: int) -> list[str]:
    """Its id as our JSON bodies carry it (compact, orjson)."""
    return [f'"conversation_id":{conv},', f'"conversation_id":{conv}}}']


async def scan(conn: AsyncConnection, integration_id: str, end_user_id: str) -> Mentions:
    """The rows of the large tables whose text carries `end_user_id` (a read: these
    LIKE scans may take a while, and must not hold the write lock meanwhile)."""
    fragments = [_json_string(end_user_id)]
    conv = (await conn.execute(sa.select(_conv.c.id).where(
        _conv.c.integration_id == integration_id, _conv.c.end_user_id == end_user_id))).scalar()
    if conv is not None:
        fragments += _conversation(conv)
    return Mentions(
        await _ids(conn, sa.select(_ev.c.id).where(_ev.c.integration_id == integration_id,
                                                   _mentions(_ev.c.raw, fragments))),
        await _ids(conn, sa.select(_se.c.id).where(_mentions(_se.c.payload, fragments))),
        await _ids(conn, sa.select(_wd.c.id).where(_mentions(_wd.c.body, fragments))))


async def erase(conn: AsyncConnection, integration_id: str, end_user_id: str,
                actor: audit.Actor, found: Mentions | None = None) -> Erased:
    """Erase `end_user_id` of `integration_id` in the caller's transaction; `NotFound`
    when there is no such integration. Erasing someone with nothing stored is no error
    (their test sends and raw bodies are still looked for). `found`: what `scan` found
    beforehand (else it scans here, in the transaction)."""
    if (await conn.execute(sa.select(_integ.c.id).where(
            _integ.c.id == integration_id))).first() is None:
        raise NotFound("no such integration", field="integration")
    if found is None:
        found = await scan(conn, integration_id, end_user_id)
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        await conn.exec_driver_sql("PRAGMA secure_delete = ON")
    out = Erased(integration_id)
    needle = _json_string(end_user_id)
    conv = (await conn.execute(sa.select(_conv.c.id).where(
        _conv.c.integration_id == integration_id, _conv.c.end_user_id == end_user_id)
        .with_for_update())).scalar()
    tickets: list[int] = []
    event_ids: list[int] = []
    if conv is not None:
        out.pseudonym = pseudonym()
        tickets = list((await conn.execute(sa.select(_t.c.id).where(
            _t.c.conversation_id == conv))).scalars().all())
        event_ids = list((await conn.execute(sa.select(_msg.c.event_id).distinct().where(
            _msg.c.conversation_id == conv, _msg.c.event_id.is_not(None)))).scalars().all())
        out.messages = await _count(conn, sa.update(_msg).where(_msg.c.conversation_id == conv)
                                    .values(text=ERASED, body=None, context=None,
                                            event_id=None))
        out.tickets = len(tickets)
        await conn.execute(sa.update(_t).where(_t.c.conversation_id == conv)
                           .values(csat_comment=None))
        await conn.execute(sa.update(_conv).where(_conv.c.id == conv)
                           .values(end_user_id=out.pseudonym))
    # Raw bodies: those of the conversation, and any other of the integration naming them.
    event_ids += found.raw_events
    if event_ids:
        await conn.execute(sa.update(_msg).where(_msg.c.event_id.in_(event_ids))
                           .values(event_id=None))
        out.raw_events = await drop_events(conn, event_ids)
    mine = sa.and_(_d.c.integration_id == integration_id, sa.or_(
        _d.c.recipient_id == end_user_id,
        _d.c.conversation_id == conv if conv is not None else sa.false()))
    deliveries = sa.select(_d.c.id).where(mine).scalar_subquery()
    await conn.execute(sa.update(_da).where(_da.c.delivery_id.in_(deliveries))
                       .values(error=None))
    out.deliveries = await _count(conn, sa.update(_d).where(mine).values(
        message={}, last_error=None, recipient_id=out.pseudonym or pseudonym()))
    out.test_sends = await _count(conn, sa.delete(_ts).where(
        _ts.c.integration_id == integration_id, _ts.c.recipient_id == end_user_id))
    # Stream events and event webhooks: those naming them (`found`) or their conversation
    # or tickets.
    streams = [_se.c.id.in_(found.stream_events), _se.c.ticket_id.in_(tickets)]
    out.stream_events = await _count(conn, sa.delete(_se).where(sa.or_(*streams)))
    out.webhook_deliveries = await _count(conn, sa.delete(_wd).where(
        _wd.c.id.in_(found.webhook_deliveries)))
    fragments = [needle, *(_conversation(conv) if conv is not None else [])]
    out.idempotent_answers = await _idempotent(conn, fragments, tickets)
    if sqlite:
        await conn.exec_driver_sql(
            "INSERT INTO message_fts(message_fts) VALUES ('optimize')")
        await conn.exec_driver_sql("PRAGMA secure_delete = OFF")
    counts = {k: v for k, v in out.as_dict().items() if k not in ("integration", "pseudonym")}
    await audit.record(conn, actor, "end_user.erased", "end_user",
                       f"{integration_id}/{out.pseudonym or '-'}", {"erased": counts})
    return out


async def _idempotent(conn: AsyncConnection, fragments: list[str], tickets: list[int]) -> int:
    """Delete stored first answers (kept 24 h) that carry them or answer a request about
    one of their tickets."""
    about = [_ir.c.target.like(f"% /api/tickets/{t}{end}") for t in tickets
             for end in ("", "/%")]
    return await _count(conn, sa.delete(_ir).where(sa.or_(
        _mentions(_ir.c.response, fragments), *about)))
