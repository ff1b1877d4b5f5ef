"""Who may see and do what: roles, which tickets an actor sees, who hears of a ticket.

The rules, each stated once here and used by the API, the live stream and the writers:

* Staff (supervisors and admins) see every ticket; an agent sees the queue
  (queued tickets) and the tickets assigned to them: `can_see`, and the same
  rule as a SQL condition, `can_see_sql`.
* The assignee or staff may manage a ticket (transfer, resolve, re-send a
  reply): `can_manage`.
* An event about a ticket goes to its audience (`audience`): everyone while
  the ticket is queued, else its assignee (plus whoever the caller names, such
  as the previous assignee of a transfer); staff receive every event
  (`realtime.stream.Event.visible_to`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import sqlalchemy as sa

from connector.storage.bulk import Writer
from connector.storage.models import Ticket

Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
#: Supervisors and admins: they see every ticket and every event.
STAFF: tuple[Role, ...] = ("supervisor", "admin")

_t = Ticket.__table__


@dataclass(slots=True, frozen=True)
class Actor:
    """Who acts: a signed-in user, as the domain sees them."""

    id: int
    username: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def can_see(actor: Actor, ticket: Mapping[str, Any]) -> bool:
    """Staff see every ticket; an agent the queue and the tickets assigned to them."""
    return actor.is_staff or ticket["state"] == "queued" or ticket["assignee_id"] == actor.id


def can_see_sql(actor: Actor, table: sa.Table = _t) -> sa.ColumnElement[bool]:
    """`can_see` as a condition on the rows of `table` (the ticket table)."""
    if actor.is_staff:
        return sa.true()
    return sa.or_(table.c.state == "queued", table.c.assignee_id == actor.id)


def can_manage(actor: Actor, ticket: Mapping[str, Any]) -> bool:
    """Staff, or the ticket's assignee: who may transfer, resolve or re-send."""
    return actor.is_staff or ticket["assignee_id"] == actor.id


def audience(ticket: Mapping[str, Any], *also: int | None) -> tuple[bool, list[int]]:
    """Who hears of an event about `ticket`: (everyone, the users named), as
    `Event(public, user_ids)`. The users are its assignee and `also`."""
    ids = {i for i in (ticket["assignee_id"], *also) if i is not None}
    return ticket["state"] == "queued", sorted(ids)


#: What the audience of an event about a ticket needs: its id, state and assignee.
AUDIENCE = sa.select(_t.c.id, _t.c.state, _t.c.assignee_id).where(
    _t.c.id.in_(sa.bindparam("ids", expanding=True)))
#: `AUDIENCE` as SQLite text, the ids as one JSON array: one statement text for any
#: count of ids, run on the DB-API cursor by the ingest writer (`storage.bulk.Writer`).
AUDIENCE_SQLITE = ("SELECT id, state, assignee_id FROM ticket "
                   "WHERE id IN (SELECT value FROM json_each(?))")


def audience_tickets(bulk: Writer, ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """The tickets `ids` as `audience` needs them (id, state, assignee_id), by id;
    ids of no ticket are left out."""
    if not ids:
        return {}
    ordered = sorted(ids)
    rows = bulk.execute(AUDIENCE, {"ids": ordered}, AUDIENCE_SQLITE, (bulk.json(ordered),))
    return {r[0]: {"id": r[0], "state": r[1], "assignee_id": r[2]} for r in rows}
