"""Free-form labels on tickets: the rules of a label, replacing a ticket's set, suggestions.

A label is trimmed and lower-cased (so `Billing` and `billing ` are one label), then
1 to `MAX_LENGTH` characters with no control character; a ticket holds at most
`MAX_PER_TICKET`, duplicates merged. Who may set them is who may manage the ticket
(`roles.can_manage`: its assignee, or staff), in any state, so a resolved ticket can
still be labelled by the agent who handled it. A change is a `ticket.updated` frame
carrying the new set (`tickets.summary`), for the ticket's audience.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain import tickets
from connector.domain.errors import FieldError, Forbidden
from connector.domain.roles import Actor, can_manage, can_see_sql
from connector.storage.models import Ticket, TicketLabel
from connector.storage.store import SyncTx

_t = Ticket.__table__
_tl = TicketLabel.__table__

MAX_LENGTH = 50
MAX_PER_TICKET = 20
#: Suggestions answered at most.
MAX_SUGGESTIONS = 20

#: `check` as a JSON schema pattern: no control character, something not white space.
PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"

_LOCK = sa.select(_t.c.id).where(_t.c.id == sa.bindparam("tid")).with_for_update()
_CLEAR = sa.delete(_tl).where(_tl.c.ticket_id == sa.bindparam("tid"))
_ADD = sa.insert(_tl)


def check(raw: object, field: str = "label") -> str:
    """One label as stored: trimmed, lower-cased; `FieldError` naming `field` if it is
    not a string, empty, longer than `MAX_LENGTH` or holds a control character."""
    if not isinstance(raw, str):
        raise FieldError(field, "must be a string")
    label = raw.strip().lower()
    if not label:
        raise FieldError(field, "must not be empty")
    if len(label) > MAX_LENGTH:
        raise FieldError(field, f"must be at most {MAX_LENGTH} characters")
    if any(unicodedata.category(c) == "Cc" for c in label):
        raise FieldError(field, "must not contain control characters")
    return label


def check_set(raw: object) -> list[str]:
    """A ticket's new labels (`check` each, field `labels.N`), duplicates merged in
    order; at most `MAX_PER_TICKET` after merging (field `labels`)."""
    if not isinstance(raw, list):
        raise FieldError("labels", "must be a list of strings")
    out: list[str] = []
    for n, item in enumerate(raw):
        label = check(item, f"labels.{n}")
        if label not in out:
            out.append(label)
    if len(out) > MAX_PER_TICKET:
        raise FieldError("labels", f"at most {MAX_PER_TICKET} labels")
    return out


def set_sync(tx: SyncTx, ticket_id: int, actor: Actor, new: list[str]) -> dict[str, Any]:
    """Replace the ticket's labels with `new` (already `check_set`); the ticket after it.
    A ticket the actor may not see is answered as reading it (`tickets.visible`); one
    they may see but not manage is `Forbidden`. The ticket row is locked first, so two
    replacements at once run one after the other."""
    tx.conn.execute(_LOCK, {"tid": ticket_id})
    ticket = tickets.visible(actor, tickets.load_sync(tx.conn, ticket_id))
    if not can_manage(actor, ticket):
        raise Forbidden("only the assignee or a supervisor can label this ticket")
    if sorted(new) == tickets.labels_of(ticket):
        return ticket
    tx.conn.execute(_CLEAR, {"tid": ticket_id})
    if new:
        tx.conn.execute(_ADD, [{"ticket_id": ticket_id, "label": label} for label in new])
    return tickets.changed(tx, tickets.reload(tx, ticket_id),
                           public=ticket["state"] == "queued")


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def suggest(conn: AsyncConnection, actor: Actor, prefix: str,
                  limit: int = MAX_SUGGESTIONS) -> list[dict[str, Any]]:
    """Labels already used on tickets `actor` may see (`roles.can_see_sql`: an agent's
    own and the queue; staff every ticket) starting with `prefix` (trimmed,
    lower-cased; empty: all), the most used first, then by name: [{label, tickets}]."""
    count = sa.func.count().label("n")
    query = (sa.select(_tl.c.label, count).join(_t, _t.c.id == _tl.c.ticket_id)
             .where(can_see_sql(actor)).group_by(_tl.c.label))
    prefix = prefix.strip().lower()
    if prefix:
        query = query.where(_tl.c.label.like(_like_prefix(prefix), escape="\\"))
    rows = (await conn.execute(query.order_by(count.desc(), _tl.c.label).limit(limit))).all()
    return [{"label": r.label, "tickets": r.n} for r in rows]
