"""A fake Chatlayer channel in a child process, timing when each request has arrived.

A minimal keep-alive HTTP/1.1 server on asyncio (uvloop) and loopback: it
answers every POST with 200 and records, keyed by the benchmark token in the
body, the CLOCK_MONOTONIC time at which the whole request had arrived.
Tokens are those of bench/delivery.py's runs: `k<hex><c or d><round>x<seq>y`.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import time
from typing import Any

from .procs import free_port, raise_nofile
from .rawhttp import content_length
from .sched import use_uvloop

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_TOKEN = re.compile(rb"(k[0-9a-f]+[cd]\d+)x(\d+)y")


class _ChannelProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies only: enough for httpx and our client."""

    def __init__(self, arrivals: dict[tuple[str, int], int], counts: list[int]) -> None:
        self.arrivals, self.counts = arrivals, counts
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = content_length(self.buf[:end])
            if len(self.buf) < end + 4 + length:
                return
            now = time.monotonic_ns()
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            self.counts[0] += 1
            m = _TOKEN.search(body)
            if m is not None:
                self.arrivals.setdefault((m.group(1).decode(), int(m.group(2))), now)
            self.transport.write(_OK)


def channel_main(pipe: Any, port: int) -> None:
    """Child process: serve on `port` until the parent sends "stop"."""
    raise_nofile()
    use_uvloop()

    async def serve() -> None:
        arrivals: dict[tuple[str, int], int] = {}
        counts = [0]
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _ChannelProtocol(arrivals, counts),
                                          "127.0.0.1", port, backlog=1024)
        pipe.send("ready")
        while True:
            msg = await loop.run_in_executor(None, pipe.recv)
            if msg == "stop":
                break
            # ("take", run): hand over (and forget) the arrivals of one run
            run = msg[1]
            mine = {seq: t for (r, seq), t in arrivals.items() if r == run}
            for seq in mine:
                del arrivals[(run, seq)]
            pipe.send((mine, counts[0]))
        server.close()

    asyncio.run(serve())


class Channel:
    """The fake channel's child process; `take(run)` hands over the arrivals of a run."""

    def __init__(self) -> None:
        self.port = free_port()
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=channel_main, args=(child, self.port), daemon=True)
        self.proc.start()
        if not self.pipe.poll(30) or self.pipe.recv() != "ready":
            raise SystemExit("fake channel did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/chatlayer"

    def take(self, run: str) -> tuple[dict[int, int], int]:
        self.pipe.send(("take", run))
        return self.pipe.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            self.pipe.send("stop")
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
