"""Ticket actions the audit trail records, each in the action's own transaction:
supervisors' (and admins') assignments and transfers, and re-sends of a reply."""

from __future__ import annotations

from typing import Any

from connector.domain import audit, tickets
from connector.domain.roles import Actor
from connector.storage.models import User
from connector.storage.store import SyncTx, Tx


def transfer_sync(tx: SyncTx, ticket_id: int, actor: Actor, to: User | None,
                  by: audit.Actor) -> dict[str, Any]:
    """`tickets.transfer_sync`; by staff, recorded: `ticket.assigned_by_supervisor` for
    a ticket that had no assignee, else `ticket.transferred` (back to the queue too)."""
    before = tickets.load_sync(tx.conn, ticket_id)
    moved = tickets.transfer_sync(tx, ticket_id, actor, to)
    if actor.is_staff and before is not None:
        action = ("ticket.assigned_by_supervisor"
                  if before["assignee_id"] is None and to is not None else "ticket.transferred")
        audit.record_sync(tx, by, action, "ticket", ticket_id, audit.diff(
            {"assignee": before["assignee"], "state": before["state"]},
            {"assignee": moved["assignee"], "state": moved["state"]}))
    return moved


async def resend(tx: Tx, message_id: int, actor: Actor, by: audit.Actor) -> dict[str, Any]:
    """`tickets.resend`, recorded as `delivery.resent`."""
    state = await tickets.resend(tx, message_id, actor)
    await audit.record(tx, by, "delivery.resent", "message", message_id,
                       {"delivery": {"after": state.get("state")}})
    return state
