"""Fakes for what lives outside us, each a real HTTP server on a loopback port."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a client goes away
    (the connector closes a connection without reading the answer, by design); any
    other error in a handler is still printed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    #: The body's bytes as received (what a signature is over).
    raw: bytes = b""


@dataclass
class Reply:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class FakeChannel:
    """A Chatlayer Webhook channel endpoint.

    `script` is consumed one reply per request; when empty, `default` answers.
    Every request (whatever the answer) is kept in `received`; `delivered` keeps
    those answered 2xx.
    """

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default = Reply(200)
        self.received: list[Received] = []
        self.delivered: list[Received] = []
        #: Requests whose body was read (counted before any `Reply.delay`).
        self.arrived = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        channel = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with channel._changed:
                    reply = channel.script.pop(0) if channel.script else channel.default
                    channel.arrived += 1
                    channel._changed.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                body, time.monotonic(), raw)
                # Recorded before answering: whoever reads the answer finds it recorded.
                with channel._changed:
                    channel.received.append(item)
                    if 200 <= reply.status < 300:
                        channel.delivered.append(item)
                    channel._changed.notify_all()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    out = b'{"ok": true}' if reply.status < 300 else b'{"error": "nope"}'
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/chatlayer/webhook"
        # A short poll interval: `stop()` waits for the loop to notice the shutdown.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                        daemon=True)

    def start(self) -> FakeChannel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_delivered(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until `count` requests were answered 2xx (or fail the test)."""
        self._wait(lambda: len(self.delivered) >= count, timeout,
                   f"{count} deliveries")
        with self._lock:
            return list(self.delivered)

    def wait_arrived(self, count: int, timeout: float = 10.0) -> None:
        """Block until `count` requests have arrived, answered or not (or fail the test)."""
        self._wait(lambda: self.arrived >= count, timeout, f"{count} requests to arrive")

    def _wait(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"waiting for {what}: channel got {len(self.delivered)} deliveries "
                        f"({self.arrived} requests arrived, {len(self.received)} answered)")
                self._changed.wait(left)

    def texts(self) -> list[str]:
        return [r.body["message"]["text"] for r in self.delivered]


class FakeChatlayerApi(FakeChannel):
    """Chatlayer's API, as far as the conversation actions go: every POST is recorded
    (path, headers, body) and answered as `script`/`default` say; `api_url` is its base."""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def actions(self) -> list[tuple[str, Any]]:
        """(path, body) of every request answered 2xx, in order."""
        with self._lock:
            return [(r.path, r.body) for r in self.delivered]
