"""Conversations and their transcript.

A conversation is one end user of one integration. Every message gets `seq`,
increasing per conversation, from the conversation row's `last_seq`, updated
under the row lock in the writing transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain import webhook_events, webhooks
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.models import Conversation, Message
from connector.storage.store import SyncTx

_conv = Conversation.__table__
_msg = Message.__table__

KINDS = ("user", "bot", "agent", "note", "system")


@dataclass(slots=True)
class ConversationRef:
    id: int
    integration_id: str
    end_user_id: str
    open_ticket_id: int | None


@dataclass(slots=True)
class NewMessage:
    kind: str
    text: str
    body: Any = None
    context: dict[str, Any] | None = None
    author_id: int | None = None
    event_id: int | None = None


_ADVANCE = (sa.update(_conv).where(_conv.c.id == sa.bindparam("cid"))
            .values(last_seq=_conv.c.last_seq + sa.bindparam("n"),
                    updated_at=sa.bindparam("now", type_=UTCDateTime))
            .returning(_conv.c.last_seq))
_INSERT = sa.insert(_msg).returning(_msg.c.id)


def append(tx: SyncTx, conversation_id: int, ticket_id: int | None,
           messages: list[NewMessage]) -> list[dict[str, Any]]:
    """Append messages with consecutive `seq`; returns the stored rows as dicts."""
    if not messages:
        return []
    now = utcnow()
    last = tx.conn.execute(_ADVANCE, {"cid": conversation_id, "n": len(messages),
                                      "now": now}).scalar_one()
    stored = []
    for offset, m in enumerate(messages):
        assert m.kind in KINDS, m.kind
        row = {
            "conversation_id": conversation_id, "seq": last - len(messages) + 1 + offset,
            "ticket_id": ticket_id, "kind": m.kind, "author_id": m.author_id, "text": m.text,
            "body": m.body, "context": m.context, "event_id": m.event_id, "created_at": now,
        }
        row["id"] = tx.conn.execute(_INSERT, row).scalar_one()
        stored.append(row)
    if ticket_id is not None and webhooks.wanted(tx, "message.created"):
        webhook_events.messages_created(tx, stored)
    return stored


async def messages_of(conn: AsyncConnection, conversation_id: int) -> list[dict[str, Any]]:
    rows = (await conn.execute(
        sa.select(_msg).where(_msg.c.conversation_id == conversation_id).order_by(_msg.c.seq)
    )).all()
    return [dict(r._mapping) for r in rows]


def message_dict(row: dict[str, Any], *, author: str | None = None,
                 delivery: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON shape of a transcript message."""
    created = row["created_at"]
    out = {
        "id": row["id"], "seq": row["seq"], "conversation_id": row["conversation_id"],
        "ticket_id": row["ticket_id"], "kind": row["kind"], "author": author,
        "text": row["text"], "message": row["body"], "context": row["context"],
        "created_at": created.isoformat() if created else None,
    }
    if delivery is not None:
        out["delivery"] = delivery
    return out


async def ticket_of_message(conn: AsyncConnection, message_id: int) -> int | None:
    return (await conn.execute(
        sa.select(_msg.c.ticket_id).where(_msg.c.id == message_id))).scalar()
