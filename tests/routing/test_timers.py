"""What happens because time passed (`connector.routing.timers` and the system
transitions of `connector.domain.assignment`): re-queue on silence, auto-resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector.storage.models import Message, TicketTransition
from tests.helpers import rows, wait_until
from tests.realtime_helpers import World
from tests.routing.desk import (
    assigned,
    desk,
    handover,
    online,
    quiet,
    staff,
    ticket,
    transitions,
    updated_for,
)

pytestmark = pytest.mark.anyio

_tt = TicketTransition.__table__
_m = Message.__table__


async def reply(who: Any, ticket_id: int, text: str = "Hello, I am here") -> None:
    r = await who.http.post(f"/api/tickets/{ticket_id}/messages", json={"text": text})
    assert r.status_code == 201, r.text


async def requeues_of(world: World, ticket_id: int) -> list[dict[str, Any]]:
    return await transitions(world, _tt.c.ticket_id == ticket_id, _tt.c.action == "requeued")


async def requeued(world: World, ticket_id: int, within: float = 10) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await requeues_of(world, ticket_id)
        return found[0] if found else None

    return await wait_until(check, within, f"ticket {ticket_id} to be re-queued")


async def test_silent_agent_requeued_to_the_other_agent_replied_one_kept(tmp_path: Path):
    after = 2.0
    async with desk(tmp_path, requeue_after_seconds=after) as world:
        sam = await staff(world, "sam", "supervisor")
        supervisor = await world.open(sam)
        alice, bob = await staff(world, "alice"), await staff(world, "bob")
        await online(world, bob)
        kept = await handover(world, "u0")
        assert (await assigned(world, kept))["assignee_id"] == bob.user_id
        await reply(bob, kept)

        alice_console = await online(world, alice)
        silent = await handover(world, "u1")  # alice: none open against bob's one
        assert (await assigned(world, silent))["assignee_id"] == alice.user_id
        await alice_console.until(updated_for(silent, state="assigned"))

        move = await requeued(world, silent, within=after + 10)
        assert {k: move[k] for k in ("from_state", "to_state", "actor_id", "reason")} == {
            "from_state": "assigned", "to_state": "queued", "actor_id": None,
            "reason": "agent_silent"}
        # Back to routing, and to bob although he holds more: not to the silent alice.
        row = await assigned(world, silent)
        assert row["assignee_id"] == bob.user_id and row["requeues"] == 1
        await reply(bob, silent)
        routed = await transitions(world, _tt.c.ticket_id == silent,
                                   _tt.c.to_state == "assigned")
        assert [(t["assignee_id"], t["reason"]) for t in routed] == [
            (alice.user_id, "routing"), (bob.user_id, "routing")]
        for console in (alice_console, supervisor):
            await console.until(updated_for(silent, state="queued", assignee_id=None))
            frame = await console.until(
                lambda f: f["type"] == "message.created" and f["ticket"] == silent
                and f["message"]["kind"] == "system"
                and (f["message"].get("context") or {}).get("event") == "requeued")
            assert frame["message"]["context"]["reason"] == "agent_silent"
        assert await requeues_of(world, kept) == []  # bob replied in it


async def test_a_user_message_after_the_reply_restarts_the_clock(tmp_path: Path):
    after = 2.0
    async with desk(tmp_path, requeue_after_seconds=after) as world:
        alice = await staff(world, "alice")
        await online(world, alice)
        t = await handover(world, "u0")
        await assigned(world, t)
        await reply(alice, t)
        await quiet()
        await quiet()  # past `after` since the assignment and the reply
        assert (await ticket(world, t))["state"] == "assigned"
        assert await requeues_of(world, t) == []

        await world.turn("u0", "Are you still there?")
        (said,) = await rows(world.live.app, Message, _m.c.ticket_id == t, _m.c.kind == "user",
                             _m.c.text == "Are you still there?")
        move = await requeued(world, t, within=after + 10)
        assert move["reason"] == "agent_silent"
        assert (move["at"] - said["created_at"]).total_seconds() >= after
        # alice is the only agent: the ticket comes back to her.
        assert (await assigned(world, t))["assignee_id"] == alice.user_id


async def test_inactive_conversation_resolved(tmp_path: Path):
    after = 2.0
    async with desk(tmp_path, auto_resolve_after_seconds=after) as world:
        alice = await staff(world, "alice")
        console = await online(world, alice)
        t = await handover(world, "u0")
        await assigned(world, t)
        await quiet()  # the clock runs from the latest message, not the assignment
        await reply(alice, t)
        (said,) = await rows(world.live.app, Message, _m.c.ticket_id == t,
                             _m.c.kind == "agent")

        async def resolved() -> dict[str, Any] | None:
            row = await ticket(world, t)
            return row if row["state"] == "resolved" else None

        await wait_until(resolved, after + 10, "the ticket to be resolved")
        (move,) = await transitions(world, _tt.c.ticket_id == t, _tt.c.to_state == "resolved")
        assert {k: move[k] for k in ("action", "from_state", "actor_id", "assignee_id",
                                     "reason")} == {
            "action": "resolved", "from_state": "assigned", "actor_id": None,
            "assignee_id": alice.user_id, "reason": "inactive"}
        assert (move["at"] - said["created_at"]).total_seconds() >= after
        await console.until(updated_for(t, state="resolved"))
        # The conversation is closed: the end user's next handover is a new ticket.
        assert await handover(world, "u0") != t
