"""The ceiling for the console benchmarks: a bare Starlette WebSocket broadcast.

* `GET /ws`: accepts any WebSocket (no sign-in, no database) and keeps it in a
  set until it disconnects; one task per socket (its receive loop).
* `POST /hooks/smartly/{integration_id}`: reads and parses the webhook body
  (stdlib `json`), builds the frame a console would get for it and sends it to
  every connected socket, then answers 202. The frame is the connector's own
  `message.created` frame, captured in the same run (`--template FILE`), with
  this turn's input as the message text and a fresh cursor and message id: the
  same size and the same content (which matters with permessage-deflate).
  It is serialised once and sent to all.
* `--heartbeat SECONDS`: every SECONDS, a `{"type":"heartbeat","cursor":N}`
  frame to every socket (one ticker task for all sockets).
* `--coalesce`: a prototype, not a ceiling. The POST only queues the frame and
  answers; one flusher task sends everything queued since its last pass as a
  single WebSocket message (a JSON array of frames) to every socket. Batches
  grow with the load, like a group commit, so the per-message costs (ASGI
  send, permessage-deflate, one write syscall) are paid once per batch instead
  of once per event. Shows what coalescing would buy the connector's hub.

Run by `bench/latency.py` and `bench/connections.py`; by hand:
`python3 bench/bare_ws.py --port 8101 [--template frame.json] [--heartbeat 5]`.
Started with the same `uvicorn.run` options as `connector serve` (see
bench/lib/baseline.py and connector/cli.py): uvloop, httptools, the default
WebSocket implementation, one worker, no access log, no server header,
`ws_max_size` 65 KiB, logging at WARNING.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lib.baseline import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

DEFAULT_TEMPLATE: dict[str, Any] = {
    "type": "message.created", "cursor": 0, "ticket": 1,
    "message": {"id": 0, "seq": 1, "conversation_id": 1, "ticket_id": 1, "kind": "user",
                "author": None, "text": "", "message": None, "context": {},
                "created_at": "2025-01-01T00:00:00+00:00"},
}


class State:
    def __init__(self, template: dict[str, Any], heartbeat: float | None,
                 coalesce: bool = False) -> None:
        self.template = template
        self.heartbeat = heartbeat
        self.coalesce = coalesce
        self.clients: set[WebSocket] = set()
        self.cursor = 0
        self.pending: list[str] = []
        self.flusher: asyncio.Task[None] | None = None


def build_app(state: State) -> Starlette:
    async def broadcast(text: str) -> None:
        for ws in list(state.clients):
            try:
                await ws.send_text(text)
            except Exception:  # gone: its receive loop removes it
                state.clients.discard(ws)

    async def flush() -> None:
        while state.pending:
            batch, state.pending = state.pending, []
            await broadcast("[" + ",".join(batch) + "]")

    async def smartly(request: Request) -> Response:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            return JSONResponse({"error": "invalid"}, status_code=422)
        state.cursor += 1
        frame = copy.copy(state.template)
        frame["cursor"] = state.cursor
        message = dict(frame["message"])
        message["id"] = state.cursor
        message["text"] = (body.get("payload") or {}).get("input")
        frame["message"] = message
        text = json.dumps(frame, separators=(",", ":"))
        if state.coalesce:
            state.pending.append(text)
            if state.flusher is None or state.flusher.done():
                state.flusher = asyncio.create_task(flush())
        else:
            await broadcast(text)
        return JSONResponse({"status": "processed", "event_id": state.cursor,
                             "ticket_id": None, "ticket_opened": False}, status_code=202)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "clients": len(state.clients)})

    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        state.clients.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            state.clients.discard(websocket)

    async def ticker() -> None:
        assert state.heartbeat
        while True:
            await asyncio.sleep(state.heartbeat)
            await broadcast(json.dumps({"type": "heartbeat", "cursor": state.cursor},
                                       separators=(",", ":")))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(ticker()) if state.heartbeat else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Starlette(routes=[
        Route("/hooks/smartly/{integration_id}", smartly, methods=["POST"]),
        Route("/healthz", healthz),
        WebSocketRoute("/ws", ws_endpoint),
    ], lifespan=lifespan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--template", type=Path, help="JSON file: the frame to imitate")
    parser.add_argument("--heartbeat", type=float, default=None, help="seconds")
    parser.add_argument("--coalesce", action="store_true",
                        help="prototype: one message per batch of events (see above)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    template = json.loads(args.template.read_text()) if args.template else DEFAULT_TEMPLATE
    serve(build_app(State(template, args.heartbeat, args.coalesce)), args.host, args.port,
          args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
