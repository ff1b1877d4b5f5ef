"""The frames of the live stream: one constructor for each type, the one place its
shape and its audience (`roles.audience`) are decided.

Stored events (`Event`, given a cursor when appended to the stream) are the
changes consoles apply; `hello`, `resync` and `heartbeat` are sent to one
console and never stored. The protocol is described in `connector.realtime.hub`
and docs/console.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from connector.domain.roles import Actor, audience
from connector.realtime.stream import Event

#: Offered to an idle console by the hub's heartbeat timer, sent as `heartbeat(cursor)`.
HEARTBEAT = Event("heartbeat", {})


def ticket_created(summary: dict[str, Any]) -> Event:
    """A new ticket (`tickets.summary`), for everyone: it is queued."""
    return Event("ticket.created", {"ticket": summary}, summary["id"], True)


def ticket_updated(summary: dict[str, Any], *also: int | None, public: bool = False) -> Event:
    """A ticket changed (`tickets.summary`, whose state and assignee decide the audience);
    `public` also tells everyone (it left the queue)."""
    shown, user_ids = audience(summary, *also)
    return Event("ticket.updated", {"ticket": summary}, summary["id"], shown or public,
                 user_ids)


def message_created(ticket: Mapping[str, Any], message: dict[str, Any],
                    *also: int | None) -> Event:
    """A message added to the ticket's transcript (`transcript.message_dict`)."""
    return Event("message.created", {"ticket": ticket["id"], "message": message},
                 ticket["id"], *audience(ticket, *also))


def delivery_updated(ticket: Mapping[str, Any], message_id: int,
                     delivery: dict[str, Any]) -> Event:
    """The delivery of a reply changed state (`outbox.state_dict`)."""
    return Event("delivery.updated", {"ticket": ticket["id"], "message_id": message_id,
                                      "delivery": delivery}, ticket["id"], *audience(ticket))


def typing(ticket: Mapping[str, Any], actor: Actor) -> Event:
    """`actor` is typing in the ticket: for its assignee and staff, even while queued."""
    return Event("typing", {"ticket": ticket["id"], "user": actor.username,
                            "user_id": actor.id}, ticket["id"], False, audience(ticket)[1])


def viewing(ticket: Mapping[str, Any], actor: Actor, on: bool) -> Event:
    """`actor` has the ticket open in a console (`on`), or left it: for its assignee and
    staff, like `typing`, so that two people never answer unawares."""
    return Event("viewing", {"ticket": ticket["id"], "user": actor.username,
                             "user_id": actor.id, "on": on}, ticket["id"], False,
                 audience(ticket)[1])


def presence(actor: Actor, online: bool) -> Event:
    """A user's first console connected (`online`) or their last one closed."""
    return Event("presence", {"user": actor.username, "user_id": actor.id,
                              "role": actor.role, "online": online}, None, True)


def user_status(user_id: int, username: str, role: str, status: str) -> Event:
    """A user's status (`agents.STATUSES`) changed, for everyone (who can take work)."""
    return Event("user.status", {"user": username, "user_id": user_id, "role": role,
                                 "status": status}, None, True)


def hello(cursor: int, user: dict[str, Any]) -> str:
    """The first frame on a socket: where its stream starts, and who is signed in."""
    return json.dumps({"type": "hello", "cursor": cursor, "user": user})


def resync(cursor: int) -> str:
    """Before `hello`: the cursor asked for cannot be resumed; reload, then go on from
    `cursor`."""
    return json.dumps({"type": "resync", "cursor": cursor})


def heartbeat(cursor: int) -> str:
    """Sent to a console idle for a heartbeat period, at the last cursor it was sent."""
    return orjson.dumps({"type": "heartbeat", "cursor": cursor}).decode()
