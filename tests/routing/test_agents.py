"""Who routing may choose (`connector.domain.agents`): status, console, disabled;
presence grace; the routing profile through `/api/me` and `/api/users/{id}`;
capacity for claims and transfers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from connector.storage.models import TicketTransition
from tests.routing.desk import (
    assigned,
    assignments,
    desk,
    fake_console,
    handover,
    online,
    profile,
    quiet,
    set_status,
    staff,
    ticket,
    user,
)

pytestmark = pytest.mark.anyio

_tt = TicketTransition.__table__


async def test_never_offline_away_consoleless_or_disabled_backlog_to_who_comes_online(
        tmp_path: Path):
    async with desk(tmp_path) as world:
        admin = await world.person("root")
        no_console = await staff(world, "alice")
        await set_status(no_console, "online")
        away = await staff(world, "bob")
        await world.open(away)
        await set_status(away, "away")
        offline = await staff(world, "carol")
        await world.open(offline)
        assert (await user(world, offline))["status"] == "offline"  # new users start so
        disabled = await staff(world, "dave")
        dave_console = await online(world, disabled)
        r = await admin.http.patch(f"/api/users/{disabled.user_id}", json={"disabled": True})
        assert r.status_code == 200, r.text
        with pytest.raises(ConnectionClosed):  # disabling closes the console...
            while True:
                await dave_console.next()
        await fake_console(world, disabled)  # ... another instance's row may linger
        assert (await user(world, disabled))["status"] == "offline"  # and sets them offline

        backlog = [await handover(world, f"u{n}") for n in range(3)]
        await quiet()
        assert [(await ticket(world, t))["state"] for t in backlog] == ["queued"] * 3
        assert await assignments(world) == []

        eve = await staff(world, "eve")
        await profile(admin, eve, max_concurrent=1)
        console = await online(world, eve)
        assert (await assigned(world, backlog[0]))["assignee_id"] == eve.user_id
        await quiet()
        assert [(await ticket(world, t))["state"] for t in backlog[1:]] == ["queued"] * 2
        r = await eve.http.post(f"/api/tickets/{backlog[0]}/resolve", json={})
        assert r.status_code == 200, r.text
        assert (await assigned(world, backlog[1]))["assignee_id"] == eve.user_id
        assert [(t["ticket_id"], t["assignee_id"]) for t in await assignments(world)] == [
            (backlog[0], eve.user_id), (backlog[1], eve.user_id)]
        await console.until(lambda f: f["type"] == "ticket.updated"
                            and f["ticket"]["id"] == backlog[1])


async def test_offline_after_the_presence_grace_not_when_back_within_it(tmp_path: Path):
    grace = 2.0
    async with desk(tmp_path, presence_grace_seconds=grace) as world:
        sam = await staff(world, "sam", "supervisor")
        supervisor = await world.open(sam)
        alice = await staff(world, "alice")
        console = await online(world, alice)
        await supervisor.until(lambda f: f["type"] == "user.status"
                               and f["user_id"] == alice.user_id and f["status"] == "online")

        closed = time.monotonic()
        await console.ws.close()
        frame = await supervisor.until(
            lambda f: f["type"] == "user.status" and f["user_id"] == alice.user_id,
            within=grace + 10)
        assert frame["status"] == "offline"
        assert frame["user"] == "alice" and frame["role"] == "agent"
        assert time.monotonic() - closed >= grace
        assert (await alice.http.get("/api/me")).json()["status"] == "offline"

        # Back online; the console drops and comes back within the grace: still online.
        console = await online(world, alice)
        after = await world.last_cursor()
        await console.drop()
        await world.open(alice)
        await quiet()
        await quiet()  # well past the grace since the drop
        assert (await alice.http.get("/api/me")).json()["status"] == "online"
        assert [e.payload for e in await world.stored(after) if e.type == "user.status"] == []


async def test_online_without_a_console_is_offline_after_the_grace(tmp_path: Path):
    grace = 2.0
    async with desk(tmp_path, presence_grace_seconds=grace) as world:
        sam = await staff(world, "sam", "supervisor")
        supervisor = await world.open(sam)
        alice = await staff(world, "alice")
        set_at = time.monotonic()
        await set_status(alice, "online")  # from the API, no console open
        frame = await supervisor.until(
            lambda f: f["type"] == "user.status" and f["user_id"] == alice.user_id
            and f["status"] == "offline", within=grace + 10)
        assert frame["user"] == "alice"
        assert time.monotonic() - set_at >= grace


async def test_me_and_the_routing_profile(tmp_path: Path):
    async with desk(tmp_path) as world:
        admin = await world.person("root")
        alice = await staff(world, "alice")
        me = (await alice.http.get("/api/me")).json()
        assert {k: me[k] for k in ("id", "username", "role", "status", "max_concurrent",
                                   "skills")} == {
            "id": alice.user_id, "username": "alice", "role": "agent", "status": "offline",
            "max_concurrent": None, "skills": []}
        for status in ("online", "away", "offline", "online"):
            assert (await set_status(alice, status))["status"] == status
            assert (await alice.http.get("/api/me")).json()["status"] == status
        for bad in ("busy", "", None, 1, "ONLINE"):
            r = await alice.http.patch("/api/me", json={"status": bad})
            if bad is None:  # null: no change
                assert r.status_code == 200 and r.json()["status"] == "online", r.text
                continue
            assert r.status_code == 422, (bad, r.text)
            assert [f["field"] for f in r.json()["fields"]] == ["status"], r.text

        out = await profile(admin, alice, max_concurrent=2, skills=[" FR ", "fr", "Billing"])
        assert (out["max_concurrent"], out["skills"]) == (2, ["billing", "fr"])
        me = (await alice.http.get("/api/me")).json()
        assert (me["max_concurrent"], me["skills"]) == (2, ["billing", "fr"])
        bad_values = [("max_concurrent", 0), ("max_concurrent", 1001), ("max_concurrent", "x"),
                      ("max_concurrent", 1.5), ("max_concurrent", True),
                      ("skills", [""]), ("skills", ["  "]), ("skills", "fr"), ("skills", [1]),
                      ("skills", [f"s{n}" for n in range(51)]), ("skills", ["x" * 101])]
        for field, value in bad_values:
            r = await admin.http.patch(f"/api/users/{alice.user_id}", json={field: value})
            assert r.status_code == 422, (field, value, r.text)
            assert {f["field"].split(".")[0] for f in r.json()["fields"]} == {field}, r.text
        me = (await alice.http.get("/api/me")).json()
        assert (me["max_concurrent"], me["skills"]) == (2, ["billing", "fr"])  # unchanged
        assert (await profile(admin, alice, max_concurrent=1000,
                              skills=[f"s{n}" for n in range(50)]))["max_concurrent"] == 1000
        out = await profile(admin, alice, max_concurrent=None, skills=[])
        assert (out["max_concurrent"], out["skills"]) == (None, [])
        r = await alice.http.patch(f"/api/users/{alice.user_id}", json={"max_concurrent": 9})
        assert r.status_code == 403, r.text


async def test_claim_at_capacity_is_409_a_supervisor_may_go_above(tmp_path: Path):
    async with desk(tmp_path) as world:  # alice stays offline: nothing is routed to her
        admin = await world.person("root")
        sam = await staff(world, "sam", "supervisor")
        alice = await staff(world, "alice")
        await profile(admin, alice, max_concurrent=1)
        first, second = await handover(world, "u1"), await handover(world, "u2")
        assert (await alice.http.post(f"/api/tickets/{first}/claim")).status_code == 200
        r = await alice.http.post(f"/api/tickets/{second}/claim")
        assert r.status_code == 409, r.text
        assert (r.json()["load"], r.json()["max_concurrent"]) == (1, 1)
        assert (await ticket(world, second))["state"] == "queued"

        r = await sam.http.post(f"/api/tickets/{second}/transfer", json={"to": "alice"})
        assert r.status_code == 200, r.text
        assert (await ticket(world, second))["assignee_id"] == alice.user_id
        moves = await assignments(world)
        assert [(t["action"], t["actor_id"], t["reason"]) for t in moves] == [
            ("claimed", alice.user_id, None), ("assigned", sam.user_id, None)]
