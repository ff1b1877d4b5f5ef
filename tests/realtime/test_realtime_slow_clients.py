"""Slow and idle consoles: a client that stops reading is closed after the send timeout,
one whose queue overflows catches up from the store and stays connected, heartbeats
keep idle connections alive. Scaffolding: tests/realtime_helpers.py."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import anyio
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from connector.settings import ConfigError, load_settings
from tests import builders
from tests.realtime_helpers import (
    CONTROL,
    for_ticket,
    frames_of,
    ghost,
    strictly_increasing,
    world_with,
)

pytestmark = pytest.mark.anyio


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
    async with world_with(tmp_path, ws_send_timeout_seconds=0.5) as world:
        sam, root = await world.person("sam"), await world.person("root")
        await world.claimed(sam, "u-1")
        fast = await world.open(sam)
        start = fast.hello["cursor"]

        stalled = StalledClient(world.live.port, {"Cookie": root.cookie, "Origin": world.live.url})
        world.stack.callback(stalled.close)
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
        assert sent < world.live.settings.ws_queue_max  # not a full queue: the socket

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


async def test_a_console_whose_queue_overflows_catches_up_and_stays_connected(tmp_path):
    """The server outpaces the queue (10 events here): the console is not closed; it
    reads the stored events back, then goes on live, each event once, no gap."""
    async with world_with(tmp_path, ws_queue_max=10) as world:
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


async def test_the_send_timeout_is_a_checked_setting():
    assert load_settings().ws_send_timeout_seconds == 15
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match=r"^CONNECTOR_WS_SEND_TIMEOUT_SECONDS: "):
            load_settings(ws_send_timeout_seconds=bad)


async def test_heartbeats_keep_an_idle_connection_alive(tmp_path):
    async with world_with(tmp_path, ws_heartbeat_seconds=0.3) as world:
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
