"""The `/ws` protocol at its edges: the handshake (origin, session, compression) and
the frames a client may send (bad frames and floods close the socket with a clear
code). Scaffolding: tests/realtime_helpers.py."""

from __future__ import annotations

import contextlib
import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from connector.accounts import auth
from connector.web.routes import ws as ws_route
from tests.realtime_helpers import Stream, world_with

pytestmark = pytest.mark.anyio


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


async def test_compression_is_offered_only_when_configured(world, tmp_path):
    """Browsers offer permessage-deflate; the server accepts it only with ws_compression."""
    alice = await world.person("alice")
    ws = await world.connect(alice, compression="deflate")
    assert "permessage-deflate" not in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
    async with world_with(tmp_path, ws_compression=True) as other:
        bob = await other.person("bob")
        ws = await other.connect(bob, compression="deflate")
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        s = Stream(ws)
        assert (await s.next())["type"] == "hello"
