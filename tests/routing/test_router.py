"""Automatic assignment through the real app (`connector.routing.router`): capacity,
fairness, skills and the fallback, manual mode. Agents are available the real way:
a console open over a WebSocket and `PATCH /api/me {"status": "online"}`."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.routing import router
from connector.storage.models import TicketTransition
from tests.routing.desk import (
    assigned,
    assignments,
    desk,
    handover,
    online,
    profile,
    quiet,
    staff,
    ticket,
    transitions,
    updated_for,
)

pytestmark = pytest.mark.anyio

_tt = TicketTransition.__table__


async def test_capacity_one_each_third_waits_for_whoever_frees_up(tmp_path: Path):
    async with desk(tmp_path) as world:
        admin = await world.person("root")
        alice, bob = await staff(world, "alice"), await staff(world, "bob")
        for agent in (alice, bob):
            await profile(admin, agent, max_concurrent=1)
        consoles = {alice.user_id: await online(world, alice),
                    bob.user_id: await online(world, bob)}

        first = await handover(world, "u1")
        second = await handover(world, "u2")
        third = await handover(world, "u3")
        holders = {(await assigned(world, t))["assignee_id"] for t in (first, second)}
        assert holders == {alice.user_id, bob.user_id}
        for t in (first, second):
            holder = (await ticket(world, t))["assignee_id"]
            await consoles[holder].until(updated_for(t, state="assigned", assignee_id=holder))
        await quiet()
        assert (await ticket(world, third))["state"] == "queued"

        # Whoever holds the first ticket resolves it; the third goes to them.
        freed = (await ticket(world, first))["assignee_id"]
        resolver = alice if freed == alice.user_id else bob
        r = await resolver.http.post(f"/api/tickets/{first}/resolve", json={})
        assert r.status_code == 200, r.text
        assert (await assigned(world, third))["assignee_id"] == freed
        await consoles[freed].until(updated_for(third, state="assigned", assignee_id=freed))

        routed = await assignments(world)
        assert [(t["ticket_id"], t["action"], t["actor_id"], t["reason"], t["from_state"])
                for t in routed] == [(t, "assigned", None, "routing", "queued")
                                     for t in (first, second, third)]
        assert [t["assignee_id"] for t in routed][2] == freed


async def test_fewest_open_first_then_longest_since_last_assignment(tmp_path: Path):
    async with desk(tmp_path, agent_capacity=5) as world:
        alice, bob = await staff(world, "alice"), await staff(world, "bob")
        await online(world, bob)
        t1, t2 = await handover(world, "u1"), await handover(world, "u2")
        for t in (t1, t2):
            assert (await assigned(world, t))["assignee_id"] == bob.user_id

        await online(world, alice)
        # alice holds none, bob two: alice, and again alice (one against two) although
        # bob has waited longer since his last assignment.
        t3 = await handover(world, "u3")
        assert (await assigned(world, t3))["assignee_id"] == alice.user_id
        t4 = await handover(world, "u4")
        assert (await assigned(world, t4))["assignee_id"] == alice.user_id
        # Two each: bob's last assignment is the older one (and he is not first by id).
        assert alice.user_id < bob.user_id
        t5 = await handover(world, "u5")
        assert (await assigned(world, t5))["assignee_id"] == bob.user_id
        t6 = await handover(world, "u6")
        assert (await assigned(world, t6))["assignee_id"] == alice.user_id
        assert {t["reason"] for t in await assignments(world)} == {"routing"}


async def test_skills_language_and_category_then_fallback_after_the_timeout(
        tmp_path: Path):
    fallback = 3.0
    async with desk(tmp_path, routing_fallback_seconds=fallback) as world:
        admin = await world.person("root")
        alice, bob = await staff(world, "alice"), await staff(world, "bob")
        await profile(admin, alice, skills=["FR"])  # stored lower case
        await profile(admin, bob, skills=["billing"])
        await online(world, alice)
        await online(world, bob)

        # Each of these but the first would go to the other agent without skills (fewer
        # open, or longer since the last assignment).
        for n in (1, 2):
            t = await handover(world, f"fr{n}", lang="fr-fr", handover_category_name="")
            assert (await assigned(world, t))["assignee_id"] == alice.user_id
        for n in (1, 2, 3):
            t = await handover(world, f"billing{n}", lang="en-gb",
                               handover_category_name="Billing")
            assert (await assigned(world, t))["assignee_id"] == bob.user_id

        # bob is full (3): the fallback can only be alice's.
        nobody = await handover(world, "u3", lang="de-de", handover_category_name="shipping")
        await quiet()
        assert (await ticket(world, nobody))["state"] == "queued"
        row = await assigned(world, nobody, within=fallback + 10)
        assert row["assignee_id"] == alice.user_id
        (last,) = await transitions(world, _tt.c.ticket_id == nobody,
                                    _tt.c.to_state == "assigned")
        assert (last["actor_id"], last["reason"]) == (None, "fallback")
        assert (last["at"] - row["opened_at"]).total_seconds() >= fallback
        assert [t["reason"] for t in await assignments(world)] == ["routing"] * 5 + [
            "fallback"]


async def test_manual_routing_assigns_nothing(tmp_path: Path):
    async with desk(tmp_path, routing="manual") as world:
        alice = await staff(world, "alice")
        await online(world, alice)
        t1 = await handover(world, "u1")
        await quiet()
        assert (await ticket(world, t1))["state"] == "queued"
        assert await assignments(world) == []
        r = await alice.http.post(f"/api/tickets/{t1}/claim")  # agents claim, as before
        assert r.status_code == 200, r.text


async def test_a_ticket_someone_can_take_is_not_held_up_behind_many_nobody_can(
        tmp_path: Path):
    async with desk(tmp_path) as world:
        admin = await world.person("root")
        alice = await staff(world, "alice")
        await profile(admin, alice, skills=["fr"])
        await online(world, alice)
        for n in range(router.BATCH + 1):  # more than one pass looks at
            await handover(world, f"de{n}", lang="de-de")
        french = await handover(world, "fr", lang="fr-fr")
        assert (await assigned(world, french))["assignee_id"] == alice.user_id
        assert len(await assignments(world)) == 1
