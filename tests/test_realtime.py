"""The live stream `GET /ws` against a real uvicorn, with the `websockets` client library.

What a console receives is checked against the stored stream (the source of
truth): for a user and a cursor range, the frames received must be exactly the
stored events that user may see, each once, in cursor order, with the stored
payload. Actions go through the real HTTP API and real webhooks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from connector.accounts import auth
from connector.accounts.security import hash_secret
from connector.realtime import stream
from connector.realtime.stream import Event
from connector.settings import ConfigError, load_settings
from connector.storage.db import utcnow
from connector.storage.models import StreamEvent, UserSession
from connector.web.routes import ws as ws_route
from tests import builders
from tests.conftest import PASSWORD, LiveServer, add_bot, add_user, free_port, make_settings
from tests.fakes import FakeChannel

pytestmark = pytest.mark.anyio

ROLES = {"alice": "agent", "bob": "agent", "sam": "supervisor", "root": "admin"}
#: Frames that are not stored events.
CONTROL = ("hello", "heartbeat", "resync")



# --- plumbing ---------------------------------------------------------------------------------

async def on_server(live: LiveServer, coro: Any) -> Any:
    """Run a coroutine on the live server's event loop (its store, its bus)."""
    return await anyio.to_thread.run_sync(live.run, coro)


@dataclass
class Person:
    """A signed-in user: an HTTP client against the live server with cookie and CSRF."""

    name: str
    role: str
    user_id: int
    token: str
    http: httpx.AsyncClient

    @property
    def cookie(self) -> str:
        return f"{auth.COOKIE}={self.token}"


def frames_of(text: str | bytes) -> list[dict[str, Any]]:
    """The frames of one WebSocket message, checked against the protocol: one frame
    object, or an array of at least two event frames with increasing cursors (hello,
    heartbeat and resync always come alone)."""
    parsed = json.loads(text)
    frames = parsed if isinstance(parsed, list) else [parsed]
    for frame in frames:
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), frame
        assert isinstance(frame.get("cursor"), int), frame
    if isinstance(parsed, list):
        assert len(parsed) >= 2, parsed
        assert not any(f["type"] in CONTROL for f in parsed), parsed
        assert strictly_increasing(parsed), [f["cursor"] for f in parsed]
    return frames


@dataclass
class Stream:
    """One WebSocket connection; `frames` keeps every frame read, in order, and
    `messages` the frames of each WebSocket message read."""

    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    messages: list[list[dict[str, Any]]] = field(default_factory=list)
    hello: dict[str, Any] = field(default_factory=dict)
    unread: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)

    async def next(self, within: float = 10) -> dict[str, Any]:
        if not self.unread:
            frames = frames_of(await asyncio.wait_for(self.ws.recv(), within))
            self.messages.append(frames)
            self.unread.extend(frames)
        frame = self.unread.popleft()
        self.frames.append(frame)
        return frame

    async def message(self, within: float = 10) -> list[dict[str, Any]]:
        """Read one whole WebSocket message (none partly read before); its frames."""
        assert not self.unread, "a message was partly read"
        await self.next(within)
        while self.unread:
            await self.next()
        return self.messages[-1]

    async def until(self, predicate: Callable[[dict[str, Any]], bool],
                    within: float = 10) -> dict[str, Any]:
        with anyio.fail_after(within):
            while not predicate(frame := await self.next(within)):
                pass
        return frame

    async def reach(self, cursor: int, within: float = 10) -> None:
        """Read until an event frame with cursor >= `cursor` (or one already was read)."""
        if any(f["cursor"] >= cursor for f in self.events()):
            return
        await self.until(lambda f: f["type"] not in CONTROL and f["cursor"] >= cursor, within)

    async def drop(self) -> None:
        """Lose the connection abruptly (laptop lid closed, network gone): no closing
        handshake, whatever the server sent and was not read is lost."""
        self.ws.transport.abort()
        await self.ws.wait_closed()

    def events(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] not in CONTROL]

    async def close_code(self, within: float = 10) -> int | None:
        """Read (discarding) until the server closes; the close code it sent."""
        with anyio.fail_after(within):
            try:
                while True:
                    await self.next(within)
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
        raise AssertionError("unreachable")  # pragma: no cover


class World:
    """A live server with a bot, its fake channel, signed-in people and open streams."""

    def __init__(self, live: LiveServer, channel: FakeChannel, stack: contextlib.AsyncExitStack,
                 ) -> None:
        self.live = live
        self.channel = channel
        self.stack = stack
        self.hooks: httpx.AsyncClient
        self.bot: Any = None

    async def start(self) -> World:
        self.hooks = await self.stack.enter_async_context(
            httpx.AsyncClient(base_url=self.live.url, timeout=20))
        self.bot = await on_server(self.live, add_bot(self.live.app, self.channel.url))
        return self

    @property
    def ws_url(self) -> str:
        return self.live.url.replace("http://", "ws://") + "/ws"

    async def person(self, name: str, *, create: bool = True,
                     password: str = PASSWORD) -> Person:
        role = ROLES[name]
        if create:
            await on_server(self.live, add_user(self.live.app, name, role))
        http = await self.stack.enter_async_context(
            httpx.AsyncClient(base_url=self.live.url, timeout=20))
        r = await http.post("/api/login", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        token = r.cookies[auth.COOKIE]
        http.cookies.clear()
        http.headers.update({"Cookie": f"{auth.COOKIE}={token}",
                             "X-CSRF-Token": r.json()["csrf_token"]})
        return Person(name, role, r.json()["user"]["id"], token, http)

    async def connect(self, who: Person | None, *, after: int | str | None = None,
                      origin: str | None = "same", cookie: str | None = None,
                      **options: Any) -> ClientConnection:
        headers = {}
        if who is not None or cookie is not None:
            headers["Cookie"] = cookie if cookie is not None else who.cookie  # type: ignore[union-attr]
        if origin is not None:
            headers["Origin"] = self.live.url if origin == "same" else origin
        url = self.ws_url if after is None else f"{self.ws_url}?after={after}"
        ws = await connect(url, additional_headers=headers, proxy=None, open_timeout=10,
                           **options)
        self.stack.push_async_callback(ws.close)
        return ws

    async def open(self, who: Person, *, after: int | None = None) -> Stream:
        """Connect and read up to the hello frame (after a resync frame, if any)."""
        s = Stream(await self.connect(who, after=after))
        first = await s.next()
        if first["type"] == "resync":
            first = await s.next()
        assert first["type"] == "hello", first
        assert first["user"] == {"id": who.user_id, "username": who.name, "role": who.role}
        s.hello = first
        return s

    # Things happening, the real way.

    async def turn(self, end_user: str, text: str, **kw: Any) -> dict[str, Any]:
        r = await self.hooks.post(self.bot.smartly_path,
                                  json=builders.turn(end_user, text, answer=None, **kw))
        assert r.status_code == 200, r.text
        return r.json()

    async def escalate(self, end_user: str) -> int:
        out = await self.turn(end_user, "I want a human", need_help=True)
        assert out["ticket_opened"] is True
        return out["ticket_id"]

    async def claimed(self, who: Person, end_user: str) -> int:
        ticket = await self.escalate(end_user)
        r = await who.http.post(f"/api/tickets/{ticket}/claim")
        assert r.status_code == 200, r.text
        return ticket

    # The stored stream.

    async def stored(self, after: int = 0) -> list[stream.Event]:
        """Every stored event after `after`, in cursor order."""
        async def read() -> list[stream.Event]:
            out: list[stream.Event] = []
            cursor = after
            async with self.live.app.state.store.read() as conn:
                while True:
                    page = await stream.read_after(conn, cursor, limit=500)
                    out += page
                    if len(page) < 500:
                        return out
                    cursor = page[-1].cursor

        return await on_server(self.live, read())

    async def last_cursor(self) -> int:
        async def read() -> int:
            async with self.live.app.state.store.read() as conn:
                return await stream.last_cursor(conn)

        return await on_server(self.live, read())

    async def commit_together(self, events: list[Event]) -> list[int]:
        """Store `events` in one transaction: one batch on the bus, as a group commit
        publishes it. Their cursors."""
        async def write() -> list[int]:
            async with self.live.app.state.store.transaction() as tx:
                for event in events:
                    tx.emit(event)
            return [e.cursor for e in events]

        return await on_server(self.live, write())

    async def overflows(self, who: Person) -> list[int]:
        """For each open socket of `who`: how many times its queue overflowed."""
        async def read() -> list[int]:
            return [c.overflows for c in self.live.app.state.hub.clients
                    if c.principal.user_id == who.user_id]

        return await on_server(self.live, read())

    async def visible(self, who: Person, after: int, upto: int) -> list[dict[str, Any]]:
        """The stored events `who` may see with after < cursor <= upto, as frames."""
        return [e.frame() for e in await self.stored(after)
                if e.cursor <= upto and e.visible_to(who.user_id, who.role)]

    async def assert_exactly(self, who: Person, frames: list[dict[str, Any]], after: int,
                             upto: int) -> list[dict[str, Any]]:
        """`frames` (event frames, in the order received) in (after, upto] are exactly
        the stored events `who` may see there: each once, in order, same content."""
        expected = await self.visible(who, after, upto)
        got = [f for f in frames if after < f["cursor"] <= upto]
        assert [(f["cursor"], f["type"]) for f in got] == [
            (f["cursor"], f["type"]) for f in expected], who.name
        assert got == json.loads(json.dumps(expected))
        return got

    async def settle(self, who: Person, s: Stream, upto: int) -> list[dict[str, Any]]:
        """Read `s` up to the last event `who` may see at or below `upto`, then check
        that it received exactly the visible events since its hello."""
        expected = await self.visible(who, s.hello["cursor"], upto)
        if expected:
            await s.reach(expected[-1]["cursor"])
        assert strictly_increasing(s.events())
        return await self.assert_exactly(who, s.events(), s.hello["cursor"], upto)


@pytest.fixture
async def world(live: LiveServer, channel: FakeChannel) -> AsyncIterator[World]:
    async with contextlib.AsyncExitStack() as stack:
        yield await World(live, channel, stack).start()


@contextlib.contextmanager
def live_server(tmp_path: Path, **overrides: Any) -> Iterator[LiveServer]:
    """A live server with some settings changed, on its own database."""
    from connector.storage.migrate import upgrade

    where = tmp_path / "custom"
    where.mkdir()
    port = free_port()
    s = make_settings(where, port=port, public_url=f"http://127.0.0.1:{port}", **overrides)
    upgrade(s)
    server = LiveServer(s).start()
    try:
        yield server
    finally:
        server.stop()


def strictly_increasing(frames: list[dict[str, Any]]) -> bool:
    cursors = [f["cursor"] for f in frames]
    return all(a < b for a, b in itertools.pairwise(cursors))


# --- what each role sees ----------------------------------------------------------------------

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


# --- coalesced messages -----------------------------------------------------------------------

def for_ticket(ticket: int, who: Person, text: str) -> Event:
    """A message event on `ticket`, for its assignee `who` only (as `tickets.audience`)."""
    return Event("message.created", {"ticket": ticket, "message": {"text": text}}, ticket,
                 public=False, user_ids=[who.user_id])


def ghost(n: int) -> Event:
    return Event("presence", {"user": f"ghost-{n}", "online": True}, public=True)


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


# --- resume -----------------------------------------------------------------------------------

async def test_reconnecting_with_the_cursor_gets_exactly_the_missed_events(world):
    alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
    mine = await world.claimed(alice, "u-1")
    s1 = await world.open(alice)
    await world.turn("u-1", "first")
    await world.turn("u-1", "second")
    await s1.until(lambda f: f["type"] == "message.created" and f["message"]["text"] == "second")
    last = s1.events()[-1]["cursor"]
    await s1.drop()

    # While alice is away: the end user writes, colleagues act, a new ticket arrives,
    # and things happen that she may not see.
    for text in ("are you there?", "hello??", "ok I wait"):
        await world.turn("u-1", text)
    r = await sam.http.post(f"/api/tickets/{mine}/notes", json={"text": "careful, VIP"})
    assert r.status_code == 201
    t3 = await world.escalate("u-3")
    r = await sam.http.post(f"/api/tickets/{t3}/transfer", json={"to": "alice"})
    assert r.status_code == 200
    hidden = await world.claimed(bob, "u-4")
    await world.turn("u-4", "not for alice")
    r = await alice.http.post(f"/api/tickets/{mine}/messages", json={"text": "back now"})
    assert r.status_code == 201
    await anyio.to_thread.run_sync(world.channel.wait_delivered, 1)
    with anyio.fail_after(10):  # until the delivery outcome is stored too
        while True:
            if any(e.type == "delivery.updated" for e in await world.stored(last)):
                break
            await anyio.sleep(0.05)
    snapshot = await world.last_cursor()

    s2 = await world.open(alice, after=last)
    assert s2.hello["cursor"] == last
    expected = await world.visible(alice, last, snapshot)
    await s2.reach(expected[-1]["cursor"])
    got = await world.assert_exactly(alice, s2.events(), last, snapshot)
    assert len(got) >= 10
    assert s2.messages[1][:len(got)] == got  # the replay is one array message
    assert strictly_increasing(s2.events())
    texts = [f["message"]["text"] for f in got if f["type"] == "message.created"]
    for text in ("are you there?", "hello??", "ok I wait", "careful, VIP", "back now"):
        assert text in texts
    assert "not for alice" not in json.dumps(got)
    assert any(f["type"] == "ticket.updated" and f["ticket"]["id"] == t3 for f in got)
    assert any(f["type"] == "delivery.updated" for f in got)
    # The stream did hold events she may not see in that range: the filter was exercised.
    all_stored = [e for e in await world.stored(last) if e.cursor <= snapshot]
    assert any(e.ticket_id == hidden and not e.visible_to(alice.user_id, alice.role)
               for e in all_stored)


async def test_resume_is_exact_while_events_are_published_during_reconnects(world):
    alice, bob = [await world.person(n) for n in ("alice", "bob")]
    mine = await world.claimed(alice, "u-1")
    theirs = await world.claimed(bob, "u-2")
    assert mine != theirs
    publishing = True

    async def publish() -> None:
        nonlocal publishing
        try:
            for n in range(40):
                await world.turn("u-1", f"mine {n}")
                await world.turn("u-2", f"theirs {n}")  # not visible to alice
                if n % 10 == 0:
                    await world.escalate(f"u-new-{n}")
                    r = await alice.http.post(f"/api/tickets/{mine}/notes",
                                              json={"text": f"note {n}"})
                    assert r.status_code == 201
        finally:
            publishing = False

    first = await world.open(alice)
    start = first.hello["cursor"]
    received: list[dict[str, Any]] = []
    reconnects_while_publishing = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(publish)
        s = first
        while publishing:
            # Read a few events, drop the connection, resume from the last one read.
            for _ in range(1 + reconnects_while_publishing % 4):
                try:
                    await s.until(lambda f: f["type"] not in CONTROL, within=2)
                except TimeoutError:
                    break
            received += s.events()
            after = received[-1]["cursor"] if received else start
            await s.drop()
            if publishing:
                reconnects_while_publishing += 1
            s = await world.open(alice, after=after)
            assert s.hello["cursor"] == after
    snapshot = await world.last_cursor()
    expected = await world.visible(alice, start, snapshot)
    await s.reach(expected[-1]["cursor"])
    received += s.events()
    assert reconnects_while_publishing >= 3
    assert strictly_increasing(received)  # no duplicate across reconnects
    got = await world.assert_exactly(alice, received, start, snapshot)  # no gap
    texts = [f["message"]["text"] for f in got if f["type"] == "message.created"]
    assert [t for t in texts if t.startswith("mine ")] == [f"mine {n}" for n in range(40)]
    assert not any(t.startswith("theirs ") for t in texts)


async def test_resync_when_the_cursor_is_older_than_what_is_kept_or_ahead(world):
    sam = await world.person("sam")
    # sam stays online throughout, so the probes below add no presence events.
    keeper = await world.open(sam)
    for n in range(4):
        await world.escalate(f"u-{n}")
    last = await world.last_cursor()
    cut = last - 3
    assert cut > 2

    async def prune() -> None:  # what housekeeping does past the retention
        async with world.live.app.state.store.transaction() as tx:
            await tx.conn.execute(sa.delete(StreamEvent.__table__).where(
                StreamEvent.__table__.c.id <= cut))

    await on_server(world.live, prune())
    seen: list[int] = []

    for ahead in (None, None, 1, 1000):
        after = {0: 1, 1: cut - 1}[len(seen)] if ahead is None else (
            await world.last_cursor() + ahead)
        seen.append(after)
        s = Stream(await world.connect(sam, after=after))
        resync = await s.next()
        assert resync["type"] == "resync", after
        hello = await s.next()
        assert hello["type"] == "hello"
        now = await world.last_cursor()
        assert resync["cursor"] == hello["cursor"] and hello["cursor"] <= now
        await s.ws.close()

    # Exactly at the edge of what is kept: a normal resume, everything kept is replayed.
    s = Stream(await world.connect(sam, after=cut))
    assert (await s.next())["type"] == "hello"
    await s.reach(last)
    assert [f["cursor"] for f in s.events() if f["cursor"] <= last] == list(
        range(cut + 1, last + 1))
    s = Stream(await world.connect(sam, after=last))  # up to date: no resync
    assert (await s.next())["type"] == "hello"

    ws = await world.connect(sam, after="abc")
    assert await Stream(ws).close_code() == 4400
    await keeper.reach(last)  # unaffected by all of this


# --- the handshake ----------------------------------------------------------------------------

async def test_a_foreign_origin_is_refused_before_the_upgrade(world):
    sam = await world.person("sam")
    for origin in ("http://evil.example", "null", world.live.url.replace("127.0.0.1",
                                                                          "localhost")):
        with pytest.raises(InvalidStatus) as refused:
            await world.connect(sam, origin=origin)
        assert refused.value.response.status_code == 403, origin
    # Same origin, or no Origin at all (not a browser): accepted.
    for origin in ("same", None):
        s = Stream(await world.connect(sam, origin=origin))
        assert (await s.next())["type"] == "hello"


async def test_without_a_valid_session_the_socket_is_closed_4401(world):
    sam = await world.person("sam")
    for cookie in (None, f"{auth.COOKIE}=forged-token", f"{auth.COOKIE}="):
        ws = await world.connect(None, cookie=cookie)
        assert await Stream(ws).close_code() == 4401, cookie
    r = await sam.http.post("/api/logout")
    assert r.status_code == 200
    assert await Stream(await world.connect(sam)).close_code() == 4401


# --- sessions ending close sockets ------------------------------------------------------------

async def test_logout_closes_that_sessions_socket_and_no_other(world):
    root = await world.person("root")
    alice1 = await world.person("alice")
    alice2 = await world.person("alice", create=False)
    alice3 = await world.person("alice", create=False)
    s1, s2, s3 = [await world.open(p) for p in (alice1, alice2, alice3)]
    s_root = await world.open(root)

    r = await alice1.http.post("/api/logout")
    assert r.status_code == 200
    assert await s1.close_code(within=5) == 4401
    ticket = await world.escalate("u-1")  # the other sessions' sockets are alive
    for s in (s2, s3):
        created = await s.until(lambda f: f["type"] == "ticket.created")
        assert created["ticket"]["id"] == ticket

    # A password change ends every session of the user, sockets included.
    r = await root.http.patch(f"/api/users/{alice2.user_id}",
                              json={"password": "another long secret"})
    assert r.status_code == 200
    for s in (s2, s3):
        assert await s.close_code(within=5) == 4401
    assert (await alice2.http.get("/api/session")).status_code == 401

    # Disabling does too; the admin's own socket stays open throughout.
    await world.person("bob")
    alice4 = await world.person("alice", create=False, password="another long secret")
    s4 = await world.open(alice4)
    r = await root.http.patch(f"/api/users/{alice4.user_id}", json={"disabled": True})
    assert r.status_code == 200
    assert await s4.close_code(within=5) == 4401
    await world.escalate("u-2")
    await s_root.until(lambda f: f["type"] == "ticket.created" and f["ticket"]["end_user"]
                       == "u-2")


async def test_a_session_ended_elsewhere_closes_its_socket_within_seconds(world):
    """Revoked straight in the database, as another instance's logout would: the socket
    watcher notices without any call into this process."""
    alice = await world.person("alice")
    other = await world.person("alice", create=False)
    s, s_other = await world.open(alice), await world.open(other)

    async def revoke() -> None:
        t = UserSession.__table__
        async with world.live.app.state.store.transaction() as tx:
            await tx.conn.execute(sa.update(t).where(t.c.id == hash_secret(alice.token))
                                  .values(revoked_at=utcnow()))

    await on_server(world.live, revoke())
    assert await s.close_code(within=8) == 4401
    await world.escalate("u-1")
    await s_other.until(lambda f: f["type"] == "ticket.created")


# --- frames from the client -------------------------------------------------------------------

async def test_bad_frames_close_the_socket_with_a_clear_code(world):
    alice = await world.person("alice")
    cases = [
        ("not json at all", 4400),
        ("{\"type\": \"typing\", ", 4400),
        (json.dumps({"type": "subscribe", "ticket": 1}), 4400),
        (json.dumps(["typing", 1]), 4400),
        (json.dumps({"type": "typing"}), 4400),
        (json.dumps({"type": "typing", "ticket": "1"}), 4400),
        (json.dumps({"type": "typing", "ticket": 1, "pad": "x" * 64 * 1024}), 1009),
        ("x" * (64 * 1024 + 1), 1009),
        ("x" * (256 * 1024), 1009),  # beyond what the server reads at all
        (b'{"type": "typing", "ticket": 1}', 4400),  # binary: frames are JSON text
    ]
    for frame, code in cases:
        s = await world.open(alice)
        await s.ws.send(frame)
        assert await s.close_code() == code, frame[:40]


async def test_a_flooding_client_is_throttled_then_disconnected(world):
    alice, sam = [await world.person(n) for n in ("alice", "sam")]
    ticket = await world.claimed(alice, "u-1")
    s_sam = await world.open(sam)
    start = s_sam.hello["cursor"]
    s = await world.open(alice)
    frame = json.dumps({"type": "typing", "ticket": ticket})
    sent = 0
    with contextlib.suppress(ConnectionClosed):
        for _ in range(600):
            await s.ws.send(frame)
            sent += 1
    assert await s.close_code() == 1008
    snapshot = await world.last_cursor()
    await world.settle(sam, s_sam, snapshot)  # the colleague got each typing event once
    typing = [e for e in await world.stored(start) if e.type == "typing"]
    # The burst went through (the colleague saw it), the flood beyond it was dropped.
    assert ws_route.RATE_BURST <= len(typing) < sent / 2
    assert [f["cursor"] for f in s_sam.events() if f["type"] == "typing"] == [
        e.cursor for e in typing]


# --- slow and idle clients --------------------------------------------------------------------

class StalledClient:
    """A WebSocket client on a plain socket with a tiny receive buffer that reads only
    when told to: a console whose laptop went to sleep mid-stream."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"), max_size=None)
        request = self.proto.connect()
        for name, value in headers.items():
            request.headers[name] = value
        self.proto.send_request(request)
        self._flush()
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None

    def _flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def _pump(self) -> bool:
        """Read once; False at end of stream."""
        data = self.sock.recv(1 << 16)
        if not data:
            self.proto.receive_eof()
            return False
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Response):
                assert event.status_code == 101, event.status_code
            elif isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                self.frames += frames_of(bytes(event.data))
            elif isinstance(event, Frame) and event.opcode == Opcode.CLOSE:
                assert self.proto.close_rcvd is not None
                self.close_code = self.proto.close_rcvd.code
        with contextlib.suppress(OSError):
            self._flush()
        return True

    def read_hello(self) -> dict[str, Any]:
        while not self.frames:
            assert self._pump()
        assert self.frames[0]["type"] == "hello", self.frames[0]
        return self.frames[0]

    def read_to_the_end(self) -> None:
        with contextlib.suppress(OSError):
            while self.close_code is None and self._pump():
                pass

    def close(self) -> None:
        self.sock.close()


async def test_a_client_that_stops_reading_is_closed_after_the_send_timeout(tmp_path):
    """The queue (1000 events by default) never fills here: the stalled send closes it."""
    with live_server(tmp_path, ws_send_timeout_seconds=0.5) as live:
        channel = FakeChannel().start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                world = await World(live, channel, stack).start()
                sam, root = await world.person("sam"), await world.person("root")
                await world.claimed(sam, "u-1")
                fast = await world.open(sam)
                start = fast.hello["cursor"]

                stalled = StalledClient(live.port, {"Cookie": root.cookie, "Origin": live.url})
                stack.callback(stalled.close)
                slow_start = (await anyio.to_thread.run_sync(stalled.read_hello))["cursor"]

                def slow_gone(f: dict[str, Any]) -> bool:
                    return f["type"] == "presence" and f["user"] == "root" and not f["online"]

                big = "x" * 250_000  # big frames fill the socket buffers quickly
                sent = 0
                with anyio.fail_after(60):
                    for n in range(80):
                        r = await world.hooks.post(world.bot.smartly_path, json=builders.turn(
                            "u-1", f"{n} {big}", answer=f"{n} {big}"))
                        assert r.status_code == 200
                        sent += 2
                        # The fast console keeps up with everything meanwhile.
                        last = await world.last_cursor()
                        await fast.until(lambda f, last=last: f["cursor"] >= last)
                        if any(slow_gone(f) for f in fast.frames):
                            break
                        await anyio.sleep(0.1)  # time for a stalled send to time out
                assert any(slow_gone(f) for f in fast.frames), "the stalled client was kept"
                assert sent < live.settings.ws_queue_max  # not a full queue: the socket

                # The stalled console wakes up: what was buffered, then the close code.
                await anyio.to_thread.run_sync(stalled.read_to_the_end)
                assert stalled.close_code == 4008
                got = [f for f in stalled.frames if f["type"] not in CONTROL]
                assert got and strictly_increasing(got)
                # No gap in what it did get, so it can resume from its last cursor...
                await world.assert_exactly(root, got, slow_start, got[-1]["cursor"])
                resumed = await world.open(root, after=got[-1]["cursor"])
                snapshot = await world.last_cursor()
                await resumed.reach(snapshot)
                await world.assert_exactly(root, got + resumed.events(), slow_start, snapshot)
                # ...and the fast console got every event, exactly.
                await fast.reach(snapshot)
                await world.assert_exactly(sam, fast.events(), start, snapshot)
        finally:
            channel.stop()


async def test_a_console_whose_queue_overflows_catches_up_and_stays_connected(tmp_path):
    """The server outpaces the queue (10 events here): the console is not closed; it
    reads the stored events back, then goes on live, each event once, no gap."""
    with live_server(tmp_path, ws_queue_max=10) as live:
        channel = FakeChannel().start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                world = await World(live, channel, stack).start()
                alice, bob, sam = [await world.person(n) for n in ("alice", "bob", "sam")]
                t1 = await world.claimed(alice, "u-1")
                t2 = await world.claimed(bob, "u-2")
                people = [(alice, await world.open(alice)), (sam, await world.open(sam))]

                # One commit of 1,200 events: far beyond the queue, and beyond a database page.
                flood = [ghost(n) if n % 3 else for_ticket(t2, bob, f"bob's {n}")
                         for n in range(1200)]
                await world.commit_together(flood)
                # Then overflows again and again while live events keep coming.
                async with anyio.create_task_group() as tg:
                    async def bursts() -> None:
                        for n in range(20):
                            await world.commit_together(
                                [for_ticket(t1, alice, f"alice's {n}.{i}") for i in range(12)]
                                + [for_ticket(t2, bob, f"bob's {n}.{i}") for i in range(6)])

                    tg.start_soon(bursts)
                    for n in range(10):
                        tg.start_soon(world.turn, "u-1", f"live {n}")
                await world.turn("u-1", "after the flood")
                snapshot = await world.last_cursor()

                got = {}
                for who, s in people:
                    got[who.name] = await world.settle(who, s, snapshot)  # exact, no gap
                    assert s.ws.close_code is None, who.name
                    assert (await world.overflows(who))[0] >= 2, who.name
                texts = [f["message"]["text"] for f in got["alice"]
                         if f["type"] == "message.created"]
                assert "bob's" not in " ".join(texts)
                assert sum(t.startswith("alice's ") for t in texts) == 240
                assert {f"live {n}" for n in range(10)} | {"after the flood"} <= set(texts)
                # The catch-up is sent in array messages of at most 500 frames.
                sizes = [len(m) for m in people[1][1].messages]
                assert max(sizes) == 500
                # Still live afterwards.
                await world.escalate("u-3")
                for _, s in people:
                    await s.until(lambda f: f["type"] == "ticket.created")
        finally:
            channel.stop()


async def test_the_send_timeout_is_a_checked_setting():
    assert load_settings().ws_send_timeout_seconds == 15
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match=r"^CONNECTOR_WS_SEND_TIMEOUT_SECONDS: "):
            load_settings(ws_send_timeout_seconds=bad)


async def test_heartbeats_keep_an_idle_connection_alive(tmp_path):
    with live_server(tmp_path, ws_heartbeat_seconds=0.3) as live:
        channel = FakeChannel().start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                world = await World(live, channel, stack).start()
                sam = await world.person("sam")
                s = await world.open(sam)
                beats = [await s.until(lambda f: f["type"] == "heartbeat", within=5)
                         for _ in range(3)]
                # Heartbeats carry the cursor of the last event sent (or of hello).
                seen = max([s.hello["cursor"], *(f["cursor"] for f in s.events())])
                assert [b["cursor"] for b in beats] == [seen] * 3
                ticket = await world.escalate("u-1")  # still alive and streaming
                created = await s.until(lambda f: f["type"] == "ticket.created")
                assert created["ticket"]["id"] == ticket
                beat = await s.until(lambda f: f["type"] == "heartbeat", within=5)
                assert beat["cursor"] >= created["cursor"]  # heartbeats carry the cursor
        finally:
            channel.stop()


async def test_a_role_change_closes_sockets_so_they_reconnect_with_the_new_view(world):
    root = await world.person("root")
    sam = await world.person("sam")  # a supervisor: sees every ticket
    bob = await world.person("bob")
    s_sam = await world.open(sam)
    # Demoted by an admin: the socket opened as a supervisor must not keep that view.
    r = await root.http.patch(f"/api/users/{sam.user_id}", json={"role": "agent"})
    assert r.status_code == 200
    assert await s_sam.close_code(within=5) == 4003
    # The HTTP session goes on with the new role, and so does a new socket.
    assert (await sam.http.get("/api/queue")).status_code == 403
    sam.role = "agent"
    s_again = await world.open(sam)
    theirs = await world.claimed(bob, "u-bob")
    await world.turn("u-bob", "private words for bob")
    mine = await world.escalate("u-queue")
    seen = await s_again.until(lambda f: f["type"] == "ticket.created"
                               and f["ticket"]["id"] == mine)
    assert seen["ticket"]["id"] == mine
    assert not any(f["type"] == "message.created" and f["ticket"] == theirs
                   and f["message"]["text"] == "private words for bob"
                   for f in s_again.events())


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


async def test_compression_is_offered_only_when_configured(world, tmp_path):
    """Browsers offer permessage-deflate; the server accepts it only with ws_compression."""
    alice = await world.person("alice")
    ws = await world.connect(alice, compression="deflate")
    assert "permessage-deflate" not in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
    with live_server(tmp_path, ws_compression=True) as server:
        async with contextlib.AsyncExitStack() as stack:
            other = await World(server, world.channel, stack).start()
            bob = await other.person("bob")
            ws = await other.connect(bob, compression="deflate")
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            s = Stream(ws)
            assert (await s.next())["type"] == "hello"



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
