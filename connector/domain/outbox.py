"""The outbox: a reply is stored and queued for delivery in one transaction.

Delivery states: queued -> delivered, or queued -> retrying (attempts, last
error) -> delivered | failed. A failed delivery can be re-sent. Replies of one
conversation are sent in the order they were queued (see `delivery`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.channels.base import Envelope, idempotency_key
from connector.domain.errors import Conflict, NotFound
from connector.storage.db import utcnow
from connector.storage.models import Delivery, Integration, Message
from connector.storage.store import SyncTx, Tx

_d = Delivery.__table__
_msg = Message.__table__
_i = Integration.__table__

STATES = ("queued", "retrying", "delivered", "failed")
PENDING = ("queued", "retrying")


@dataclass(slots=True, frozen=True)
class Job(Envelope):
    """A delivery leased to this process: the envelope its channel sends, and what
    recording the attempt needs."""

    id: int
    message_id: int
    conversation_id: int
    integration_id: str
    ticket_id: int | None
    attempts: int
    retry_since: dt.datetime


_INSERT = sa.insert(_d).returning(_d.c.id)
_PENDING_IN_CONVERSATION = sa.select(_d.c.id).where(
    _d.c.conversation_id == sa.bindparam("cid"), _d.c.state.in_(PENDING)).limit(1)


#: The integration is disabled: its deliveries wait, paused (`accounts.integration_state`).
_DISABLED = sa.select(_i.c.disabled).where(_i.c.id == sa.bindparam("iid"))


def enqueue(tx: SyncTx, message: dict[str, Any], *, ticket_id: int, integration_id: str,
            recipient_id: str, channel_url: str, verify_token: str) -> dict[str, Any]:
    """Queue `message` for delivery; returns the delivery's state.

    When the transaction allows it (`tx.lease`) and no earlier delivery of the
    conversation is pending, the row is created already leased to this process,
    as a claim would leave it, and put in `tx.handed`: sent after commit with no
    claim. Whatever comes later in the conversation waits for it as for any
    pending delivery, so order holds; if the process dies first, the lease runs
    out and polling sends it. Otherwise the row is left to polling, which sends
    a conversation's deliveries strictly in order (and none of a disabled
    integration's: they stay queued until it is enabled).
    """
    now = utcnow()
    conversation_id = message["conversation_id"]
    handed = tx.lease is not None and tx.conn.execute(
        _PENDING_IN_CONVERSATION, {"cid": conversation_id}).first() is None and not \
        tx.conn.execute(_DISABLED, {"iid": integration_id}).scalar()
    row = {
        "message_id": message["id"], "integration_id": integration_id,
        "conversation_id": conversation_id, "recipient_id": recipient_id,
        "message": message["message"], "idempotency_key": idempotency_key(),
        "state": "queued", "attempts": 0, "next_attempt_at": now, "created_at": now,
        "retry_since": now, "updated_at": now,
        "lease_until": now + tx.lease if tx.lease and handed else None,
    }
    row["id"] = tx.conn.execute(_INSERT, row).scalar_one()
    if handed:
        tx.handed.append(Job(
            channel_url, verify_token, recipient_id, row["message"], row["idempotency_key"],
            row["id"], message["id"], conversation_id, integration_id, ticket_id, 0, now))
    else:
        tx.deliveries = True
    return state_dict(row)


def state_dict(row: Any) -> dict[str, Any]:
    get = row.get if isinstance(row, dict) else row._mapping.get
    delivered = get("delivered_at")
    next_at = get("next_attempt_at")
    return {
        "id": get("id"), "state": get("state"), "attempts": get("attempts"),
        "last_status": get("last_status"), "last_error": get("last_error"),
        "next_attempt_at": next_at.isoformat() if next_at and get("state") == "retrying" else None,
        "delivered_at": delivered.isoformat() if delivered else None,
    }


async def for_messages(conn: AsyncConnection, message_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not message_ids:
        return {}
    rows = (await conn.execute(sa.select(_d).where(_d.c.message_id.in_(message_ids)))).all()
    return {r.message_id: state_dict(r) for r in rows}


async def by_message(conn: AsyncConnection, message_id: int) -> Any:
    return (await conn.execute(sa.select(_d).where(_d.c.message_id == message_id))).first()


#: How many characters of a message `excerpt` keeps.
EXCERPT = 120


def excerpt(message: Any, limit: int = EXCERPT) -> str:
    """What a delivered message says, for a table cell: its text cut to `limit`
    characters, or, for a message without text, what it carries (an image, a
    carousel of 3, buttons...)."""
    if not isinstance(message, dict):
        return ""
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        attachment = message.get("attachment")
        payload = attachment.get("payload") if isinstance(attachment, dict) else None
        kind = attachment.get("type") if isinstance(attachment, dict) else None
        if isinstance(payload, dict) and payload.get("template_type") == "generic":
            count = len(payload.get("elements") or [])
            text = f"[carousel of {count}]"
        elif isinstance(payload, dict) and payload.get("template_type") == "button":
            text = f"[buttons] {payload.get('text') or ''}".strip()
        elif isinstance(kind, str):
            text = f"[{kind}]"
        else:
            text = ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


async def recent(conn: AsyncConnection, integration_id: str | None = None,
                 limit: int = 50) -> list[dict[str, Any]]:
    """The latest deliveries, newest first, as an admin reads them: the state, the
    recipient, the ticket, an excerpt of the message, and `last_error` only for a
    delivery that has not (yet) succeeded."""
    query = sa.select(_d, _msg.c.ticket_id).join(_msg, _msg.c.id == _d.c.message_id).order_by(
        _d.c.id.desc()).limit(limit)
    if integration_id is not None:
        query = query.where(_d.c.integration_id == integration_id)
    out = []
    for r in (await conn.execute(query)).all():
        item = {**state_dict(r), "message_id": r.message_id, "integration_id": r.integration_id,
                "created_at": r.created_at.isoformat(), "recipient": r.recipient_id,
                "ticket_id": r.ticket_id, "excerpt": excerpt(r.message)}
        if r.state == "delivered":
            item["last_error"] = None
        out.append(item)
    return out


async def resend(tx: Tx, message_id: int) -> dict[str, Any]:
    """Queue a failed delivery again (same idempotency key: it never got a 2xx)."""
    row = await by_message(tx.conn, message_id)
    if row is None:
        raise NotFound("no delivery for that message")
    if row.state != "failed":
        raise Conflict(f"delivery is {row.state}, only failed ones can be re-sent")
    now = utcnow()
    await tx.conn.execute(sa.update(_d).where(_d.c.id == row.id, _d.c.state == "failed").values(
        state="queued", next_attempt_at=now, retry_since=now, updated_at=now, lease_until=None))
    tx.deliveries = True
    return state_dict({**row._mapping, "state": "queued", "next_attempt_at": now})
