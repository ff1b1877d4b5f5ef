"""`GET /ws`: the live stream for consoles (see `connector.realtime.hub`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from connector.accounts import auth
from connector.domain import events, tickets
from connector.domain.roles import can_see
from connector.realtime.feed import replay_then_live, resume_point
from connector.realtime.hub import (
    CLOSE_BAD_FRAME,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    Client,
)
from connector.storage.db import unreachable
from connector.web import unavailable

MAX_FRAME = 64 * 1024
#: Client frames: a burst of `RATE_BURST`, refilled at `RATE_PER_SECOND`. Frames
#: beyond it are dropped; a client that keeps flooding is disconnected.
RATE_PER_SECOND = 5.0
RATE_BURST = 20
FLOOD_LIMIT = 100
#: How long to wait to send the close frame to a client that is not reading.
CLOSE_TIMEOUT = 10.0
#: The user must change their password first (`POST /api/me/password`): no stream until then.
CLOSE_PASSWORD_CHANGE = 4403


PATH = "/ws"


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    """The endpoint as an ASGI app (`lanes.FastLanes` routes to it directly).

    Once accepted, the console's writer sends each message on `send` itself:
    one message per console per batch of events is the hot path, and
    Starlette's per-send state checks add nothing there.
    """
    websocket = WebSocket(scope, receive, send)
    try:
        await _stream(websocket, send)
    except Exception as exc:
        if not unreachable(exc):
            raise
        unavailable.note(exc, "a live-stream connection (closed 1013)")
        with contextlib.suppress(Exception):
            if websocket.client_state == WebSocketState.CONNECTING:
                await websocket.accept()  # so that the console reads the code
            await websocket.close(code=unavailable.CLOSE_TRY_AGAIN_LATER,
                                  reason="database unavailable")


async def _stream(websocket: WebSocket, asgi_send: Send) -> None:
    app = websocket.app
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in app.state.settings.allowed_origins:
        await websocket.close(code=CLOSE_POLICY)  # before accept: HTTP 403, no upgrade
        return
    principal = await auth.authenticate(app.state.store, app.state.settings,
                                        websocket.cookies.get(auth.COOKIE))
    after_raw = websocket.query_params.get("after")
    await websocket.accept()
    if principal is None:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="sign in first")
        return
    if principal.must_change_password:
        await websocket.close(code=CLOSE_PASSWORD_CHANGE, reason="password_change_required")
        return
    if after_raw is not None and not (after_raw.isascii() and after_raw.isdigit()
                                      and len(after_raw) <= 18):
        await websocket.close(code=CLOSE_BAD_FRAME, reason="after must be a cursor number")
        return
    hub = app.state.hub
    client = Client(principal, app.state.settings.ws_queue_max)

    metrics = app.state.metrics

    async def send(text: str) -> None:  # hello/resync, then only the writer: one at a time
        await asgi_send({"type": "websocket.send", "text": text})
        metrics.live_sent(text)

    # Judged before attaching: attaching emits events (presence) that would make a cursor
    # from the future look valid. The replay still reads after attaching: no gap.
    start, resync = await resume_point(hub, int(after_raw) if after_raw else None)
    async with hub.attach(client):
        if resync:
            await send(events.resync(start))
        await send(events.hello(start, principal.user_dict()))
        reader = asyncio.create_task(_read_frames(websocket, client, app))
        writer = asyncio.create_task(replay_then_live(hub, client, start, send))
        # A client closed by the hub (send timed out, signed out) may have its writer stuck
        # on a socket nobody reads: stop on the close itself, not only when a task ends.
        closed = asyncio.create_task(client.closed.wait())
        await asyncio.wait({reader, writer, closed}, return_when=asyncio.FIRST_COMPLETED)
        for task in (reader, writer, closed):
            task.cancel()
        for task in (reader, writer, closed):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if client.closed.is_set():
        with contextlib.suppress(Exception):
            # Bounded: the close frame waits behind whatever a stalled client left unread.
            await asyncio.wait_for(
                websocket.close(code=client.close_code, reason=client.close_reason),
                CLOSE_TIMEOUT)


async def _read_frames(websocket: WebSocket, client: Client, app: Any) -> None:
    tokens = float(RATE_BURST)
    last = time.monotonic()
    dropped = 0
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            text = message.get("text")
            if text is None:
                client.close(CLOSE_BAD_FRAME, "frames must be JSON text, not binary")
                return
            if len(text) > MAX_FRAME:
                client.close(CLOSE_TOO_BIG, "frame larger than 64 KiB")
                return
            now = time.monotonic()
            tokens = min(RATE_BURST, tokens + (now - last) * RATE_PER_SECOND)
            last = now
            if tokens < 1:
                dropped += 1
                if dropped >= FLOOD_LIMIT:
                    client.close(CLOSE_POLICY, "too many frames")
                    return
                continue
            tokens -= 1
            try:
                frame = json.loads(text)
            except ValueError:
                client.close(CLOSE_BAD_FRAME, "frame is not valid JSON")
                return
            if not isinstance(frame, dict) or frame.get("type") not in _CLIENT_FRAMES:
                client.close(CLOSE_BAD_FRAME, "unknown frame type")
                return
            await _about_ticket(app, client, frame)
    except (WebSocketDisconnect, RuntimeError):
        client.close(1000, "")


#: What a console may say about a ticket it shows: `{"type": "typing", "ticket": id}`
#: (the agent is typing in it) and `{"type": "viewing", "ticket": id, "on": bool}`
#: (it is open in this console, again every 20 s while it stays open; `on: false`
#: when it is left). Each becomes an event for the ticket's audience.
_CLIENT_FRAMES = ("typing", "viewing")


async def _about_ticket(app: Any, client: Client, frame: dict[str, Any]) -> None:
    kind = frame["type"]
    ticket_id = frame.get("ticket")
    if not isinstance(ticket_id, int) or isinstance(ticket_id, bool):
        client.close(CLOSE_BAD_FRAME, f"{kind} needs a ticket id")
        return
    on = frame.get("on", True)
    if kind == "viewing" and not isinstance(on, bool):
        client.close(CLOSE_BAD_FRAME, "viewing needs on: true or false")
        return
    async with app.state.store.read() as conn:
        ticket = await tickets.load(conn, ticket_id)
    if ticket is None or not can_see(client.principal.actor, ticket):
        return  # silently ignored: nothing about other tickets leaks
    actor = client.principal.actor
    async with app.state.store.transaction() as tx:
        tx.emit(events.typing(ticket, actor) if kind == "typing"
                else events.viewing(ticket, actor, on))


routes = [WebSocketRoute(PATH, stream)]
