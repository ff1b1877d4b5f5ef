"""Slow clients are cut off: request headers and bodies have deadlines (issue 10, item 7).

The app runs under uvicorn configured exactly as `connector serve` configures it
(`server_options`), with 1 s deadlines; the clients are raw sockets that send a
byte at a time, so nothing between them and the server completes a request early.
The last test starts the real `connector serve` with its deadlines from the
environment.
"""

from __future__ import annotations

import http.client
import json
import resource
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from connector.accounts import auth
from tests import builders
from tests.conftest import PASSWORD, ServedLikeServe, add_bot, add_user, serve_like_serve
from tests.test_process import Deployment

DEADLINE = 1.0
#: How long a connection may take to be cut off: generous, the deadline is 1 s.
BOUND = 15.0


@pytest.fixture
def served(tmp_path: Path, migrated_db: Path) -> Iterator[ServedLikeServe]:
    server = serve_like_serve(tmp_path, migrated_db, header_timeout_seconds=DEADLINE,
                              body_timeout_seconds=DEADLINE, ws_heartbeat_seconds=0.3)
    yield server
    server.stop()


def trickle(port: int, head: bytes, rest: bytes) -> bytes:
    """Send `head`, then `rest` a byte every 0.2 s until the server closes the connection;
    what the server sent. Fails if the connection is still open after `BOUND` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
        sock.sendall(head)
        received = b""
        pending = iter(rest)
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            if select.select([sock], [], [], 0.2)[0]:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    return received
                if not data:
                    return received
                received += data
                continue
            byte = next(pending, None)
            if byte is not None:
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # closed: the next read says so
        raise AssertionError(f"connection still open after {BOUND} s; received {received!r}")


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_408_and_closed(raw: bytes, what: str) -> None:
    status, headers, body = parse(raw)
    assert status == 408, raw
    assert headers["connection"] == "close"
    answer = json.loads(body)
    assert answer["error"] == "timeout"
    assert what in answer["message"]


def test_headers_sent_a_byte_at_a_time_get_408_and_the_connection_closed(served):
    raw = trickle(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 500)
    assert_408_and_closed(raw, "request headers not received within 1 s")


def test_a_request_line_sent_a_byte_at_a_time_gets_408(served):
    raw = trickle(served.port, b"", b"GET /healthz?" + b"a" * 500)
    assert_408_and_closed(raw, "request headers")


def test_a_connection_that_sends_nothing_is_closed(served):
    assert trickle(served.port, b"", b"") == b""


def webhook_head(path: str, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_a_webhook_body_sent_a_byte_at_a_time_gets_408_and_the_connection_closed(served):
    bot = served.run(add_bot(served.app, "http://127.0.0.1:9/channel"))
    body = json.dumps(builders.turn()).encode()
    raw = trickle(served.port, webhook_head(bot.smartly_path, len(body)), body)
    assert_408_and_closed(raw, "request body not received within 1 s")
    # Nothing of it was stored: the same body sent at once is new.
    r = httpx.post(served.url + bot.smartly_path, content=body, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "processed", r.text


def test_an_api_body_sent_a_byte_at_a_time_gets_408_and_the_connection_closed(served):
    # Trailing white space is valid JSON: a body that does not end within `BOUND`.
    body = json.dumps({"username": "someone", "password": PASSWORD}).encode() + b" " * 200
    raw = trickle(served.port, webhook_head("/api/login", len(body)), body)
    assert_408_and_closed(raw, "request body not received within 1 s")


def test_a_body_nobody_reads_does_not_keep_the_connection_open(served):
    # Answered before its body arrived (here 401: a wrong key is refused before the body is
    # read): the rest of the body must not keep the connection open either.
    raw = trickle(served.port, webhook_head("/hooks/smartly/nope?key=wrong", 500), b"x" * 500)
    assert parse(raw)[0] == 401


def test_normal_requests_and_keep_alive_still_work(served):
    bot = served.run(add_bot(served.app, "http://127.0.0.1:9/channel"))
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b'{"status":"ok"}')
        sock = conn.sock
        # Idle for longer than the header deadline (within uvicorn's 5 s keep-alive): the
        # next request's clock starts at its first byte.
        time.sleep(DEADLINE * 1.5)
        body = json.dumps(builders.turn()).encode()
        conn.request("POST", bot.smartly_path, body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200, r.read()
        assert json.loads(r.read())["status"] == "processed"
        conn.request("POST", "/api/login", json.dumps({"username": "x", "password": "y"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 401, r.read()
        r.read()
        assert conn.sock is sock  # one connection throughout
    finally:
        conn.close()


def test_a_websocket_outlives_the_header_deadline(served):
    served.run(add_user(served.app, "alice"))
    r = httpx.post(served.url + "/api/login", json={"username": "alice", "password": PASSWORD},
                   timeout=10)
    assert r.status_code == 200, r.text
    cookie = f"{auth.COOKIE}={r.cookies[auth.COOKIE]}"
    url = served.url.replace("http://", "ws://") + "/ws"
    with connect(url, additional_headers={"Cookie": cookie}, open_timeout=10) as ws:
        assert json.loads(ws.recv(10))["type"] == "hello"
        time.sleep(DEADLINE * 1.5)
        kinds = set()
        while "heartbeat" not in kinds:  # still open, still served
            kinds.add(json.loads(ws.recv(10))["type"])


@pytest.mark.slow
def test_serve_takes_its_deadlines_from_the_environment_and_lifts_the_open_files_limit(
        tmp_path):
    d = Deployment(tmp_path, CONNECTOR_HEADER_TIMEOUT_SECONDS="1",
                   CONNECTOR_BODY_TIMEOUT_SECONDS="1", CONNECTOR_ADMIN_PASSWORD="admin pass 1")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    # `serve` inherits a low soft limit (the usual 1024, or lower) and lifts it to the hard.
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        log = d.serve()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        limits = Path(f"/proc/{d.server.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        if hard != resource.RLIM_INFINITY:  # an unlimited hard limit is left alone
            assert line.split()[3] == str(hard), line
            if lowered < hard:
                assert f"open files limit raised from {lowered} to {hard}" in log.read_text()
        raw = trickle(d.port, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 500)
        assert_408_and_closed(raw, "request headers not received within 1 s")
        body = json.dumps({"username": "admin", "password": "admin pass 1"}).encode() + b" " * 200
        raw = trickle(d.port, webhook_head("/api/login", len(body)), body)
        assert_408_and_closed(raw, "request body not received within 1 s")
    finally:
        d.cleanup()
