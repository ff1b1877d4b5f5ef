"""Pre-encoded HTTP/1.1 requests over keep-alive asyncio streams.

A request costs the load generator a few tens of µs this way (httpx costs ten
times that), so the client measures the server rather than itself.
"""

from __future__ import annotations

import asyncio
import contextlib


def http_request(method: str, path: str, port: int, body: bytes,
                 headers: dict[str, str] | None = None) -> bytes:
    """One pre-encoded HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def content_length(head: bytes) -> int:
    """The Content-Length of a request's or response's head (0 without one)."""
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    return 0


class RawConn:
    """One keep-alive connection: a request written, its response read (Content-Length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = content_length(head)
        body = await self.reader.readexactly(length) if length else b""
        return status, body


class RawPool:
    """`size` keep-alive connections to 127.0.0.1:port."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.conns: list[RawConn] = []

    async def open(self) -> RawPool:
        for _ in range(self.size):
            r, w = await asyncio.open_connection("127.0.0.1", self.port)
            self.conns.append(RawConn(r, w))
        return self

    async def close(self) -> None:
        for c in self.conns:
            c.writer.close()
            with contextlib.suppress(Exception):
                await c.writer.wait_closed()
        self.conns = []

    async def run_all(self, requests: list[bytes]) -> list[tuple[int, bytes]]:
        """Send every request, as fast as the pool goes (setup work, not measured)."""
        results: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
        it = iter(enumerate(requests))

        async def worker(conn: RawConn) -> None:
            for i, req in it:
                results[i] = await conn.roundtrip(req)

        await asyncio.gather(*(worker(c) for c in self.conns))
        return results
