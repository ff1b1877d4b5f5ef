"""What each event webhook says: the `data` of every type in `webhooks.EVENTS`, one
stable shape each (docs/webhooks.md), built from what the domain recorded.

Called where the change is recorded, in its transaction, and only once
`webhooks.wanted` says a subscription wants the type:

* `ticket_event`: from `tickets.announce`, which `tickets.transition` (and routing's
  bulk assignment) call for every transition: opened → `ticket.created`; claimed,
  routed, assigned by staff, transferred → `ticket.assigned`; put back in the queue
  (by a person, or for the agent's silence) → `ticket.requeued`; resolved or abandoned
  (by a person, or for inactivity) → `ticket.resolved`.
* `ticket_rated`: from `ingest.survey`, when the satisfaction survey's rating, then its
  comment, is recorded (after the ticket was resolved) → `ticket.rated`.
* `messages_created`: from `transcript.append` and the ingest writer, for user, bot
  and agent messages of a ticket's conversation; never internal notes or system lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from connector.domain import webhooks
from connector.storage.models import Conversation, User
from connector.storage.store import SyncTx

_u = User.__table__
_conv = Conversation.__table__

#: The ticket transitions (`ticket_transition.action`) announced, and as what.
FOR_ACTION = {"opened": "ticket.created", "claimed": "ticket.assigned",
              "assigned": "ticket.assigned", "transferred": "ticket.assigned",
              "requeued": "ticket.requeued", "resolved": "ticket.resolved",
              "abandoned": "ticket.resolved"}
#: How a ticket came to its agent, by transition (routing's has a reason and no actor).
_HOW = {"claimed": "claimed", "assigned": "assigned", "transferred": "transferred"}
#: Message kinds announced by `message.created`.
MESSAGE_KINDS = ("user", "bot", "agent")
_TICKET_FIELDS = ("id", "state", "integration_id", "conversation_id", "end_user", "lang",
                  "platform", "skill_id", "category", "reason", "opened_at", "claimed_at",
                  "first_response_at", "resolved_at", "wait_seconds", "first_response_seconds",
                  "handling_seconds", "labels")


def _users(tx: SyncTx, ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = tx.conn.execute(sa.select(_u.c.id, _u.c.username).where(_u.c.id.in_(wanted)))
    return {r.id: {"id": r.id, "username": r.username} for r in rows}


def ticket_data(summary: dict[str, Any], users: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The ticket as every `ticket.*` event shows it (`tickets.summary`'s stable part)."""
    out = {k: summary.get(k) for k in _TICKET_FIELDS}
    assignee = summary.get("assignee_id")
    out["assignee"] = users.get(assignee) if assignee is not None else None
    csat = summary.get("csat")
    out["csat"] = ({"score": csat.get("score"), "comment": csat.get("comment"),
                    "at": csat.get("at"), "sent_at": csat.get("sent_at")}
                   if isinstance(csat, dict) else None)
    return out


def ticket_event(tx: SyncTx, event_type: str, summary: dict[str, Any], *, action: str,
                 actor_id: int | None, reason: str | None,
                 previous_assignee_id: int | None) -> None:
    """Queue `event_type` for the ticket `summary` (`tickets.summary`, after the change)."""
    users = _users(tx, (actor_id, summary.get("assignee_id"), previous_assignee_id))
    data: dict[str, Any] = {"ticket": ticket_data(summary, users),
                            "by": users.get(actor_id) if actor_id is not None else None,
                            "reason": reason}
    if event_type == "ticket.assigned":
        data["how"] = "routed" if actor_id is None else _HOW.get(action, action)
        data["previous_assignee"] = (users.get(previous_assignee_id)
                                     if previous_assignee_id is not None else None)
    elif event_type == "ticket.requeued":
        data["previous_assignee"] = (users.get(previous_assignee_id)
                                     if previous_assignee_id is not None else None)
    webhooks.enqueue(tx, event_type, data)


def ticket_rated(tx: SyncTx, summary: dict[str, Any], what: str) -> None:
    """Queue `ticket.rated`: the end user's rating (`what` "rating") or the comment that
    followed it ("comment") was recorded on the ticket `summary` (its `csat`)."""
    users = _users(tx, (summary.get("assignee_id"),))
    webhooks.enqueue(tx, "ticket.rated", {"ticket": ticket_data(summary, users),
                                          "what": what})


def messages_created(tx: SyncTx, rows: list[dict[str, Any]]) -> None:
    """Queue `message.created` for each stored message (`transcript` rows: id, seq,
    conversation_id, ticket_id, kind, author_id, text, body, created_at) that is a user,
    bot or agent message of a ticket, in order."""
    shown = [r for r in rows if r["kind"] in MESSAGE_KINDS and r.get("ticket_id") is not None]
    if not shown:
        return
    conversations = {r.id: r for r in tx.conn.execute(
        sa.select(_conv.c.id, _conv.c.integration_id, _conv.c.end_user_id)
        .where(_conv.c.id.in_(sorted({r["conversation_id"] for r in shown}))))}
    authors = _users(tx, (r.get("author_id") for r in shown))
    for r in shown:
        conv = conversations.get(r["conversation_id"])
        created = r["created_at"]
        webhooks.enqueue(tx, "message.created", {
            "message": {
                "id": r["id"], "seq": r["seq"], "kind": r["kind"], "text": r["text"],
                "body": r.get("body"),
                "author": authors.get(r["author_id"]) if r.get("author_id") else None,
                "created_at": created.isoformat() if hasattr(created, "isoformat")
                else created},
            "ticket_id": r["ticket_id"], "conversation_id": r["conversation_id"],
            "integration_id": conv.integration_id if conv else None,
            "end_user": conv.end_user_id if conv else None})
