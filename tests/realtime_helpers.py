"""Scaffolding of the live-stream tests (`GET /ws` against a real uvicorn, with the
`websockets` client library); a pytest plugin (tests/conftest.py) for its fixtures.

What a console receives is checked against the stored stream (the source of
truth): for a user and a cursor range, the frames received must be exactly the
stored events that user may see, each once, in cursor order, with the stored
payload (`World.assert_exactly`, `World.settle`). Actions go through the real
HTTP API and real webhooks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from connector.accounts import auth
from connector.realtime import stream
from connector.realtime.stream import Event
from connector.storage.migrate import upgrade
from tests import builders
from tests.conftest import PASSWORD, LiveServer, add_bot, add_user, free_port, make_settings
from tests.fakes import FakeChannel

ROLES = {"alice": "agent", "bob": "agent", "sam": "supervisor", "root": "admin"}
#: Frames that are not stored events.
CONTROL = ("hello", "heartbeat", "resync")


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


@contextlib.asynccontextmanager
async def world_with(tmp_path: Path, **overrides: Any) -> AsyncIterator[World]:
    """A `World` on a live server of its own (`live_server`), with its own fake channel."""
    with live_server(tmp_path, **overrides) as live:
        channel = FakeChannel().start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                yield await World(live, channel, stack).start()
        finally:
            channel.stop()


def strictly_increasing(frames: list[dict[str, Any]]) -> bool:
    cursors = [f["cursor"] for f in frames]
    return all(a < b for a, b in itertools.pairwise(cursors))


def for_ticket(ticket: int, who: Person, text: str) -> Event:
    """A message event on `ticket`, for its assignee `who` only (as `roles.audience`)."""
    return Event("message.created", {"ticket": ticket, "message": {"text": text}}, ticket,
                 public=False, user_ids=[who.user_id])


def ghost(n: int) -> Event:
    return Event("presence", {"user": f"ghost-{n}", "online": True}, public=True)
