"""The live stream: what each console receives, by role, and how events are grouped
into WebSocket messages (one array message per commit; a batch is made into messages
once). Scaffolding: tests/realtime_helpers.py."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from connector.accounts import auth
from connector.realtime import stream
from connector.realtime.stream import Event
from tests.realtime_helpers import for_ticket, ghost, on_server

pytestmark = pytest.mark.anyio


async def test_each_console_receives_exactly_what_its_role_may_see(world):
    alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
    s_alice, s_bob, s_sam = [await world.open(p) for p in (alice, bob, sam)]

    t1 = await world.escalate("u-1")
    r = await alice.http.post(f"/api/tickets/{t1}/claim")
    assert r.status_code == 200
    await world.turn("u-1", "where is my parcel?")
    r = await alice.http.post(f"/api/tickets/{t1}/messages", json={"text": "on its way"})
    assert r.status_code == 201
    reply_id = r.json()["id"]
    t2 = await world.claimed(bob, "u-2")
    await world.turn("u-2", "bob's customer secret")
    await anyio.to_thread.run_sync(world.channel.wait_delivered, 1)
    delivered = await s_alice.until(
        lambda f: f["type"] == "delivery.updated" and f["message_id"] == reply_id
        and f["delivery"]["state"] == "delivered")
    assert delivered["ticket"] == t1 and delivered["delivery"]["last_status"] == 200
    snapshot = await world.last_cursor()

    got = {}
    for who, s in ((alice, s_alice), (bob, s_bob), (sam, s_sam)):
        got[who.name] = await world.settle(who, s, snapshot)

    def kinds(name: str, ticket: int) -> set[str]:
        return {f["type"] for f in got[name] if f.get("ticket") == ticket
                or (isinstance(f.get("ticket"), dict) and f["ticket"]["id"] == ticket)}

    # alice: both new tickets, her ticket's messages and delivery; not bob's conversation.
    created = [f["ticket"]["id"] for f in got["alice"] if f["type"] == "ticket.created"]
    assert created == [t1, t2]
    assert {"ticket.created", "ticket.updated", "message.created",
            "delivery.updated"} <= kinds("alice", t1)
    (taken,) = [f["ticket"] for f in got["alice"] if f["type"] == "ticket.updated"
                and f["ticket"]["id"] == t1]
    assert (taken["state"], taken["assignee"]) == ("assigned", "alice")
    texts = [f["message"]["text"] for f in got["alice"] if f["type"] == "message.created"]
    assert "where is my parcel?" in texts and "on its way" in texts
    assert "bob's customer secret" not in json.dumps(got["alice"])
    assert "where is my parcel?" not in json.dumps(got["bob"])
    assert not any(f["type"] == "delivery.updated" for f in got["bob"])
    # The supervisor sees all of it, and presence of colleagues.
    sam_texts = [f["message"]["text"] for f in got["sam"] if f["type"] == "message.created"]
    assert {"where is my parcel?", "on its way", "bob's customer secret"} <= set(sam_texts)
    assert any(f["type"] == "presence" and f["user"] == "sam" and f["online"]
               for f in got["alice"])


async def test_typing_reaches_colleagues_on_that_ticket_only(world):
    alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
    t1 = await world.claimed(alice, "u-1")
    t2 = await world.claimed(bob, "u-2")
    s_alice, s_bob, s_sam = [await world.open(p) for p in (alice, bob, sam)]
    await s_alice.ws.send(json.dumps({"type": "typing", "ticket": t1}))
    typing = await s_sam.until(lambda f: f["type"] == "typing")
    assert (typing["ticket"], typing["user"], typing["user_id"]) == (t1, "alice", alice.user_id)
    # Typing on a ticket alice may not see is ignored: nothing stored, nothing sent.
    await s_alice.ws.send(json.dumps({"type": "typing", "ticket": t2}))
    await s_alice.ws.send(json.dumps({"type": "typing", "ticket": 999999}))
    await world.escalate("u-3")  # a sentinel everyone sees
    snapshot = await world.last_cursor()
    for who, s in ((alice, s_alice), (bob, s_bob), (sam, s_sam)):
        await world.settle(who, s, snapshot)
    assert [f["ticket"] for f in s_sam.events() if f["type"] == "typing"] == [t1]
    assert not any(f["type"] == "typing" for f in s_bob.events())
    stored = [e for e in await world.stored(s_alice.hello["cursor"]) if e.type == "typing"]
    assert len(stored) == 1


async def test_who_views_a_ticket_reaches_its_colleagues_only(world):
    alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
    t1 = await world.claimed(alice, "u-1")
    t2 = await world.claimed(bob, "u-2")
    s_alice, s_bob, s_sam = [await world.open(p) for p in (alice, bob, sam)]
    await s_sam.ws.send(json.dumps({"type": "viewing", "ticket": t1, "on": True}))
    seen = await s_alice.until(lambda f: f["type"] == "viewing")
    assert (seen["ticket"], seen["user"], seen["user_id"], seen["on"]) == (
        t1, "sam", sam.user_id, True)
    await s_sam.ws.send(json.dumps({"type": "viewing", "ticket": t1, "on": False}))
    left = await s_alice.until(lambda f: f["type"] == "viewing")
    assert (left["user"], left["on"]) == ("sam", False)
    # Nothing about a ticket one may not see: alice on bob's, or one that does not exist.
    await s_alice.ws.send(json.dumps({"type": "viewing", "ticket": t2, "on": True}))
    await s_alice.ws.send(json.dumps({"type": "viewing", "ticket": 999999}))
    await world.escalate("u-3")  # a sentinel everyone sees
    snapshot = await world.last_cursor()
    for who, s in ((alice, s_alice), (bob, s_bob), (sam, s_sam)):
        await world.settle(who, s, snapshot)
    assert not any(f["type"] == "viewing" for f in s_bob.events())
    assert [f["user"] for f in s_sam.events() if f["type"] == "viewing"] == ["sam", "sam"]
    # A malformed one closes the socket, as any bad frame does.
    await s_alice.ws.send(json.dumps({"type": "viewing", "ticket": t1, "on": "yes"}))
    assert await s_alice.close_code() == 4400


async def test_events_committed_together_arrive_as_one_array_message(world):
    alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
    t1 = await world.claimed(alice, "u-1")
    t2 = await world.claimed(bob, "u-2")
    people = [(alice, await world.open(alice)), (bob, await world.open(bob)),
              (sam, await world.open(sam))]
    before = await world.last_cursor()
    for who, s in people:
        await world.settle(who, s, before)

    events = [ghost(0)]
    for n in range(6):
        events += [for_ticket(t1, alice, f"for alice {n}"), for_ticket(t2, bob, f"for bob {n}")]
    cursors = await world.commit_together(events)
    assert cursors == list(range(before + 1, before + 14))

    for who, s in people:
        message = await s.message()  # the whole commit, in one message, in cursor order
        assert message == await world.assert_exactly(who, message, before, cursors[-1])
    alice_got, bob_got, sam_got = (s.messages[-1] for _, s in people)
    assert len(alice_got) == len(bob_got) == 7 and len(sam_got) == 13
    # Inside an array, each console still gets only what its role may see.
    assert "for bob" not in json.dumps(alice_got) and "for alice" not in json.dumps(bob_got)


async def test_concurrent_real_traffic_is_coalesced_and_keeps_each_view(world):
    alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
    await world.claimed(alice, "u-1")
    await world.claimed(bob, "u-2")
    people = [(alice, await world.open(alice)), (bob, await world.open(bob)),
              (sam, await world.open(sam))]

    async with anyio.create_task_group() as tg:  # group commits: several events per batch
        for n in range(30):
            tg.start_soon(world.turn, "u-1", f"alice's customer {n}")
            tg.start_soon(world.turn, "u-2", f"bob's customer {n}")
    snapshot = await world.last_cursor()
    got = {who.name: await world.settle(who, s, snapshot) for who, s in people}

    def texts(name: str) -> list[str]:
        return [f["message"]["text"] for f in got[name] if f["type"] == "message.created"]

    assert sorted(texts("alice")) == sorted(f"alice's customer {n}" for n in range(30))
    assert sorted(texts("bob")) == sorted(f"bob's customer {n}" for n in range(30))
    assert len(texts("sam")) == 60
    assert any(len(m) > 1 for m in people[2][1].messages), "nothing was coalesced"


async def test_an_event_stored_without_a_publish_still_reaches_live_consoles(world):
    sam = await world.person("sam")
    s = await world.open(sam)

    async def store_silently() -> int:
        async with world.live.app.state.store.begin() as conn:  # no after-commit publish
            (event,) = await stream.append(conn, [Event("presence", {"user": "ghost"},
                                                        public=True)])
        return event.cursor

    cursor = await on_server(world.live, store_silently())
    frame = await s.until(lambda f: f.get("user") == "ghost", within=8)
    assert frame["cursor"] == cursor


async def test_a_forwarded_batch_is_made_into_messages_once_and_skips_what_was_sent() -> None:
    """Every console that sees a whole batch gets the same message texts, built once; a
    console whose replay already sent part of the batch gets only the rest, and a
    heartbeat offered with events adds nothing."""
    from connector.realtime import feed
    from connector.realtime.hub import HEARTBEAT, Batch, Client

    def rendered(cursor: int) -> Event:
        return Event.rendered(json.dumps({"type": "presence", "cursor": cursor}), "presence",
                              None, True, [], cursor)

    batch = Batch([rendered(c) for c in (5, 6, 7)])
    sent: dict[str, list[str]] = collections.defaultdict(list)

    def sender(name: str) -> Callable[[str], Any]:
        async def send(text: str) -> None:
            sent[name].append(text)
        return send

    def client() -> Client:
        return Client(auth.Principal("s", "c", 1, "sup", "supervisor"), 100)

    assert await feed._send_live(client(), [batch], 4, sender("a")) == 7
    assert await feed._send_live(client(), [batch], 4, sender("b")) == 7
    assert sent["a"] == sent["b"] == batch.messages
    assert [f["cursor"] for f in json.loads(sent["a"][0])] == [5, 6, 7]
    assert sent["a"][0] is sent["b"][0]  # the same text object, not rebuilt
    # A console whose replay already sent cursor 6, with a heartbeat queued too.
    assert await feed._send_live(client(), [batch, [HEARTBEAT]], 6, sender("c")) == 7
    assert [json.loads(m)["cursor"] for m in sent["c"]] == [7]
    # Only a heartbeat: one heartbeat frame at the console's cursor.
    assert await feed._send_live(client(), [[HEARTBEAT]], 7, sender("d")) == 7
    assert [json.loads(m) for m in sent["d"]] == [{"type": "heartbeat", "cursor": 7}]
