"""Each response leaves in one write: `coalesce.HeldHead` under the real server.

End to end, the app runs under uvicorn configured as `connector serve` configures it
(`server_options`), whose protocol is given, for these tests only, a transport that
records every write it is asked to make before passing it on. HTTP clients are
`http.client` and raw sockets. Then `HeldHead`'s own rules, on a recording transport.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.settings import Settings
from connector.web.coalesce import HeldHead
from tests import builders
from tests.conftest import PASSWORD, ServedLikeServe, add_bot, add_user, serve_like_serve


class Recording:
    """A transport that records each write it is asked for, then makes it."""

    def __init__(self, transport: Any, writes: list[bytes]) -> None:
        self._transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordedServer(ServedLikeServe):
    """The app as `serve` runs it; `connections` holds, per connection in the order they
    opened, the writes its responses made (through `Recording`)."""

    def __init__(self, settings: Settings) -> None:
        self.connections: list[list[bytes]] = []
        super().__init__(settings, self._recorded)

    def _recorded(self, served: type[Any]) -> type[Any]:
        connections = self.connections

        class Recorded(served):  # type: ignore[misc,valid-type]
            def connection_made(self, transport: Any) -> None:
                writes: list[bytes] = []
                connections.append(writes)
                super().connection_made(Recording(transport, writes))

        return Recorded


@pytest.fixture
def served(tmp_path: Path, migrated_db: Path) -> Iterator[RecordedServer]:
    server = serve_like_serve(tmp_path, migrated_db, RecordedServer)
    assert isinstance(server, RecordedServer)
    yield server
    server.stop()


def recv_until(sock: socket.socket, predicate: Any, timeout: float = 10.0) -> bytes:
    """Read from `sock` until `predicate(received)` holds."""
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while not predicate(received):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; received {received!r}")
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed; received {received!r}")
        received += data
    return received


def test_a_webhook_answer_and_an_api_error_each_leave_in_one_write(served):
    bot = served.run(add_bot(served.app, "http://127.0.0.1:9/channel"))
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        conn.request("POST", bot.smartly_path, json.dumps(builders.turn()).encode(),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        answer = json.loads(r.read())
        assert (r.status, answer["status"]) == (200, "processed")
        assert r.getheader("content-type") == "application/json"
        conn.request("GET", "/api/tickets")  # no session: 401, with its JSON body
        r = conn.getresponse()
        assert (r.status, json.loads(r.read())["error"]) == (401, "unauthorized")
    finally:
        conn.close()
    writes = served.connections[-1]
    assert len(writes) == 2, writes
    for write, status in zip(writes, (b"200", b"401"), strict=True):
        head, sep, body = write.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status) and sep and json.loads(body)


def test_a_head_request_gets_its_head_and_the_connection_goes_on(served):
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        conn.request("HEAD", "/healthz")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"")
        assert int(r.getheader("content-length")) > 0
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b'{"status":"ok"}')
    finally:
        conn.close()
    head, body = served.connections[-1]
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
    assert body.endswith(b'{"status":"ok"}')


def test_100_continue_is_sent_at_once_and_the_answer_after_the_body(served):
    bot = served.run(add_bot(served.app, "http://127.0.0.1:9/channel"))
    body = json.dumps(builders.turn()).encode()
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(f"POST {bot.smartly_path} HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        # The body is not sent until the interim answer came: held, it would never come.
        interim = recv_until(sock, lambda r: r.endswith(b"\r\n\r\n"))
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        final = recv_until(sock, lambda r: r.rstrip().endswith(b"}"))
    assert final.startswith(b"HTTP/1.1 200")
    assert json.loads(final.partition(b"\r\n\r\n")[2])["status"] == "processed"
    assert served.connections[-1][0] == interim
    assert served.connections[-1][1] == final


def test_pipelined_requests_are_answered_in_order_one_write_each(served):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(request * 3)
        raw = recv_until(sock, lambda r: r.count(b'{"status":"ok"}') == 3)
    writes = served.connections[-1]
    assert len(writes) == 3 and b"".join(writes) == raw
    for write in writes:
        assert write.startswith(b"HTTP/1.1 200 OK") and write.endswith(b'{"status":"ok"}')


def test_a_streamed_answer_sends_its_head_with_the_first_chunk(served):
    served.run(add_user(served.app, "sam", "supervisor"))
    with httpx.Client(base_url=served.url, timeout=10) as client:
        r = client.post("/api/login", json={"username": "sam", "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = client.get("/api/reports/tickets.csv",
                       params={"from": "2025-03-01", "to": "2025-03-02"})
    assert r.status_code == 200 and r.headers["transfer-encoding"] == "chunked"
    header_row = r.text.splitlines()[0]
    first = served.connections[-1][1]  # after the login's answer
    head, sep, chunk = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and sep
    assert header_row.encode() in chunk  # the first chunk came with the head


# --- HeldHead's rules, on a recording transport ------------------------------------------------

class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def held() -> tuple[HeldHead, Transport]:
    transport = Transport()
    return HeldHead(transport), transport  # type: ignore[arg-type]


def test_the_head_leaves_with_the_first_body_part_and_later_parts_alone():
    h, t = held()
    h.write(HEAD)
    assert t.writes == []
    h.write(b"{}")
    h.write(b"more")
    assert t.writes == [HEAD + b"{}", b"more"]


def test_a_held_head_is_flushed_alone_or_before_close_and_dropped_by_abort():
    h, t = held()
    h.flush()  # nothing held: nothing written
    h.write(HEAD)
    h.flush()
    assert t.writes == [HEAD]
    h.write(HEAD)
    h.close()
    assert t.writes == [HEAD, HEAD] and t.closed
    h, t = held()
    h.write(HEAD)
    h.abort()
    assert t.writes == [] and t.aborted


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 100 Continue\r\n\r\n",  # an interim answer
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",  # a head with its body already
    b"hello",  # not a head
    bytearray(HEAD),  # not bytes: passed on as it is
])
def test_anything_but_a_final_head_goes_out_at_once(data):
    h, t = held()
    h.write(data)
    assert t.writes == [bytes(data)]


def test_everything_else_is_the_transports():
    h, _ = held()
    assert h.get_extra_info("peername") == "info:peername"
