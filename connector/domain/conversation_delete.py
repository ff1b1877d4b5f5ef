"""Deleting whole conversations: their messages (and so their search index entries),
tickets with their transitions and labels, deliveries with their attempts. (The
live stream's events of their tickets go with the stream's own retention: a hole in
the middle of the stream would look like a gap to fill to every hub.)

One call deletes the conversations it is given in one transaction, children first;
callers take a small batch at a time so that no delete holds the database for long
(`accounts.integration_state.delete`). On SQLite the FTS5 index follows the message
rows by trigger; on PostgreSQL the search column goes with its row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.storage.models import (
    Conversation,
    Delivery,
    DeliveryAttempt,
    Message,
    Ticket,
    TicketLabel,
    TicketTransition,
)

_conv = Conversation.__table__
_msg = Message.__table__
_ticket = Ticket.__table__
_delivery = Delivery.__table__


async def delete(conn: AsyncConnection, conversation_ids: Sequence[int]) -> int:
    """Delete these conversations and everything of theirs; how many were deleted."""
    if not conversation_ids:
        return 0
    ids = list(conversation_ids)
    tickets = sa.select(_ticket.c.id).where(_ticket.c.conversation_id.in_(ids))
    deliveries = sa.select(_delivery.c.id).where(_delivery.c.conversation_id.in_(ids))
    attempts = DeliveryAttempt.__table__
    await conn.execute(sa.delete(attempts).where(attempts.c.delivery_id.in_(deliveries)))
    await conn.execute(sa.delete(_delivery).where(_delivery.c.conversation_id.in_(ids)))
    for child in (TicketLabel.__table__, TicketTransition.__table__):
        await conn.execute(sa.delete(child).where(child.c.ticket_id.in_(tickets)))
    await conn.execute(sa.delete(_msg).where(_msg.c.conversation_id.in_(ids)))
    await conn.execute(sa.delete(_ticket).where(_ticket.c.conversation_id.in_(ids)))
    result = await conn.execute(sa.delete(_conv).where(_conv.c.id.in_(ids)))
    return result.rowcount or 0


async def of_integration(conn: AsyncConnection, integration_id: str, limit: int) -> list[int]:
    """Up to `limit` conversation ids of the integration."""
    rows = await conn.execute(sa.select(_conv.c.id).where(
        _conv.c.integration_id == integration_id).order_by(_conv.c.id).limit(limit))
    return list(rows.scalars())


async def count(conn: AsyncConnection, integration_id: str) -> int:
    return (await conn.execute(sa.select(sa.func.count()).select_from(_conv).where(
        _conv.c.integration_id == integration_id))).scalar_one()
