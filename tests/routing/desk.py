"""Scaffolding of the routing tests: a live app with routing settings of its own, staff
signed in through the real API, consoles over real WebSockets, and the recorded
transitions read from the database.

Every routing setting is given explicitly (`desk`), whatever the defaults are.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx

from connector.accounts import auth
from connector.storage.db import utcnow
from connector.storage.models import ConsolePresence, Ticket, TicketTransition, User
from tests.conftest import PASSWORD, add_user
from tests.helpers import execute, rows, wait_until
from tests.realtime_helpers import Person, Stream, World, on_server, world_with

#: The routing settings of a test unless it gives others: everything timed is off or
#: far away, so that a test turns on only what it is about.
ROUTING: dict[str, Any] = {
    "routing": "auto", "agent_capacity": 3, "routing_fallback_seconds": 600.0,
    "requeue_after_seconds": 0.0, "presence_grace_seconds": 600.0,
    "auto_resolve_after_seconds": 0.0,
}
#: How long to watch for something that must not happen: many routing passes and
#: sweeps at the test's loop periods (tests/routing/conftest.py).
QUIET = 1.5


@contextlib.asynccontextmanager
async def desk(tmp_path: Path, **overrides: Any) -> AsyncIterator[World]:
    """A live app on a SQLite file with `ROUTING` (and `overrides`) for settings."""
    async with world_with(tmp_path, **{**ROUTING, **overrides}) as world:
        yield world


async def staff(world: World, name: str, role: str = "agent") -> Person:
    """A new staff account `name`, signed in through `POST /api/login`."""
    await on_server(world.live, add_user(world.live.app, name, role))
    http = await world.stack.enter_async_context(
        httpx.AsyncClient(base_url=world.live.url, timeout=20))
    r = await http.post("/api/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.cookies[auth.COOKIE]
    http.cookies.clear()
    http.headers.update({"Cookie": f"{auth.COOKIE}={token}",
                         "X-CSRF-Token": r.json()["csrf_token"]})
    return Person(name, role, r.json()["user"]["id"], token, http)


async def set_status(who: Person, status: str) -> dict[str, Any]:
    r = await who.http.patch("/api/me", json={"status": status})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == status
    return r.json()


async def online(world: World, who: Person) -> Stream:
    """`who` opens a console and sets themselves online: available to routing."""
    console = await world.open(who)
    await set_status(who, "online")
    return console


async def profile(admin: Person, who: Person, **changes: Any) -> dict[str, Any]:
    """`PATCH /api/users/{id}` as the admin (`max_concurrent`, `skills`)."""
    r = await admin.http.patch(f"/api/users/{who.user_id}", json=changes)
    assert r.status_code == 200, r.text
    return r.json()


async def handover(world: World, end_user: str, **fields: Any) -> int:
    """A Smartly turn with `need_help` (and payload `fields`: `lang`,
    `handover_category_name`): the new ticket's id."""
    out = await world.turn(end_user, "I want a human", need_help=True, **fields)
    assert out["ticket_opened"] is True, out
    return out["ticket_id"]


async def ticket(world: World, ticket_id: int) -> dict[str, Any]:
    (row,) = await rows(world.live.app, Ticket, Ticket.__table__.c.id == ticket_id)
    return row


async def tickets(world: World) -> list[dict[str, Any]]:
    return await rows(world.live.app, Ticket)


async def transitions(world: World, *criteria: Any) -> list[dict[str, Any]]:
    """Recorded transitions (`ticket_transition`), in the order they were written."""
    return await rows(world.live.app, TicketTransition, *criteria)


async def assignments(world: World) -> list[dict[str, Any]]:
    """The transitions that gave a ticket to an agent, in order."""
    t = TicketTransition.__table__
    return await transitions(world, t.c.to_state == "assigned")


async def assigned(world: World, ticket_id: int, within: float = 10) -> dict[str, Any]:
    """Wait until the ticket is assigned; the ticket."""
    async def check() -> dict[str, Any] | None:
        row = await ticket(world, ticket_id)
        return row if row["state"] == "assigned" else None

    return await wait_until(check, within, f"ticket {ticket_id} to be assigned")


async def quiet() -> None:
    """Let routing passes and sweeps run for a while (to see that they change nothing)."""
    await anyio.sleep(QUIET)


async def user(world: World, who: Person) -> dict[str, Any]:
    (row,) = await rows(world.live.app, User, User.__table__.c.id == who.user_id)
    return row


async def fake_console(world: World, who: Person) -> None:
    """A live `console_presence` row of `who` from an instance that is not this one (as
    while another instance has not yet closed a console)."""
    await execute(world.live.app, ConsolePresence.__table__.insert().values(
        instance_id="another-instance", user_id=who.user_id, seen_at=utcnow()))


def updated_for(ticket_id: int, **expected: Any) -> Any:
    """A predicate on frames: a `ticket.updated` of the ticket with `expected` fields."""
    def check(frame: dict[str, Any]) -> bool:
        if frame["type"] != "ticket.updated" or frame["ticket"]["id"] != ticket_id:
            return False
        return all(frame["ticket"].get(k) == v for k, v in expected.items())

    return check
