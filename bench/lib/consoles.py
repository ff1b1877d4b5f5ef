"""WebSocket consoles in child processes, timing every frame that carries a benchmark token.

A child process holds the consoles (the `websockets` library) and records,
per console, the CLOCK_MONOTONIC arrival time of every frame carrying a token
of the run (a message may be one frame or an array of frames: every token in
it is counted). With `ConsoleSpec.kinds` it also records, per token, the kind
of frame that carried it (`frame_kind`). The parent drives it through a pipe:
`Consoles` for one child, `ConsoleGroup` for several used as one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing as mp
import time
from array import array
from dataclasses import dataclass
from typing import Any

from .procs import raise_nofile
from .sched import set_client_policy, use_uvloop
from .tokens import token_re


@dataclass
class ConsoleSpec:
    url: str
    headers: list[dict[str, str]]  # per console, round robin
    count: int
    token: str = ""  # run token: frames matching token_re(token) are recorded
    compression: bool = True  # permessage-deflate, as browsers offer it
    sched: str = "batch"  # see `client_policy`
    connect_concurrency: int = 50
    kinds: bool = False  # also record each token's frame kind (`frame_kind`)


#: What `frame_kind` tells apart, by code (the index).
FRAME_KINDS = ("other", "ticket.created", "ticket.updated assigned", "ticket.updated",
               "message.created")
_TYPE, _STATE = '{"type":"', '"state":"'


def frame_kind(msg: str, pos: int) -> int:
    """The kind (`FRAME_KINDS` index) of the frame holding the token at `pos` in `msg`.

    Reads backwards from the token, with no JSON parsing: the frame's type is
    the nearest `{"type":"` before it (no object in a frame nests a "type" key
    before a ticket's `end_user`), and a `ticket.updated` frame's state the
    nearest `"state":"` after that (a ticket summary writes `state` before
    `end_user`). Frames are the server's compact JSON (orjson).
    """
    start = msg.rfind(_TYPE, 0, pos)
    if start < 0:
        return 0
    start += len(_TYPE)
    kind = msg[start:msg.find('"', start)]
    if kind == "ticket.updated":
        at = msg.find(_STATE, start, pos)
        if at >= 0 and msg.startswith("assigned", at + len(_STATE)):
            return 2
        return 3
    return {"ticket.created": 1, "message.created": 4}.get(kind, 0)


def consoles_main(conn: Any, spec: ConsoleSpec) -> None:
    """Child process: open `spec.count` consoles, record matches until told to stop.

    Protocol on `conn` (a multiprocessing Pipe end): child sends
    ("ready", connected, failed, seconds); parent sends "stop"; child sends
    ("done", result dict).
    """
    raise_nofile()
    set_client_policy(spec.sched)
    use_uvloop()
    asyncio.run(_consoles(conn, spec))


async def _consoles(pipe: Any, spec: ConsoleSpec) -> None:
    import websockets

    rx = token_re(spec.token) if spec.token else None
    seqs = [array("q") for _ in range(spec.count)]
    times = [array("q") for _ in range(spec.count)]
    kinds = [array("b") for _ in range(spec.count if spec.kinds else 0)]
    heartbeats = [0] * spec.count
    frames = [0] * spec.count
    closes: dict[str, int] = {}
    sockets: list[Any] = [None] * spec.count
    gate = asyncio.Semaphore(spec.connect_concurrency)
    failed = 0

    async def reader(i: int, ws: Any) -> None:
        s, t = seqs[i], times[i]
        k = kinds[i] if spec.kinds else None
        try:
            async for msg in ws:
                now = time.monotonic_ns()
                frames[i] += 1
                if rx is not None:
                    found = False
                    # One message may carry several events: a JSON array of frames
                    # (the connector, bare_ws.py --coalesce). Heartbeats come alone.
                    for m in rx.finditer(msg):
                        s.append(int(m.group(1)))
                        t.append(now)
                        if k is not None:
                            k.append(frame_kind(msg, m.start()))
                        found = True
                    if found:
                        continue
                if msg.startswith('{"type":"heartbeat"'):
                    heartbeats[i] += 1
        except websockets.ConnectionClosed:
            pass
        code = f"{ws.close_code}" if ws.close_code is not None else "none"
        if not stopping:
            closes[code] = closes.get(code, 0) + 1

    tasks: list[asyncio.Task[None]] = []
    stopping = False

    async def connect(i: int) -> None:
        nonlocal failed
        async with gate:
            try:
                ws = await websockets.connect(
                    spec.url, additional_headers=spec.headers[i % len(spec.headers)],
                    compression="deflate" if spec.compression else None,
                    ping_interval=None, max_size=2**20, open_timeout=120,
                    close_timeout=5)
            except Exception:
                failed += 1
                return
            sockets[i] = ws
            tasks.append(asyncio.create_task(reader(i, ws)))

    t0 = time.monotonic()
    await asyncio.gather(*(connect(i) for i in range(spec.count)))
    connected = sum(1 for s in sockets if s is not None)
    pipe.send(("ready", connected, failed, time.monotonic() - t0))
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, pipe.recv)) != "stop":
        pipe.send(("count", sum(len(s) for s in seqs), sum(frames), sum(heartbeats),
                   sum(1 for s in sockets if s is not None and s.close_code is None)))
    # Counted before closing: sockets the server closed during the measurement.
    still_open = sum(1 for s in sockets if s is not None and s.close_code is None)
    stopping = True
    await asyncio.gather(*(s.close() for s in sockets if s is not None),
                         return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("done", {
        "seqs": [s.tobytes() for s in seqs], "times": [t.tobytes() for t in times],
        "kinds": [k.tobytes() for k in kinds],
        "heartbeats": heartbeats, "frames": frames, "closed_by_server": closes,
        "connected": connected, "failed": failed, "still_open": still_open,
    }))


class _Draining:
    """`drain` for anything that can `count()` its consoles' frames."""

    def count(self) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def drain(self, expected: int, quiet: float = 3.0, limit: float = 60.0) -> float:
        """Wait until `expected` matched frames are in, or none came for `quiet` s."""
        t0 = last_change = time.monotonic()
        last = -1
        while time.monotonic() - t0 < limit:
            got = self.count()[0]
            if got >= expected:
                break
            if got != last:
                last, last_change = got, time.monotonic()
            elif time.monotonic() - last_change > quiet:
                break
            time.sleep(0.2)
        return time.monotonic() - t0


class Consoles(_Draining):
    """Handle on one consoles child process."""

    def __init__(self, spec: ConsoleSpec) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=consoles_main, args=(child, spec), daemon=True)
        self.proc.start()
        self.spec = spec
        self.ready: tuple[Any, ...] = ()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def wait_ready(self, timeout: float = 600) -> tuple[int, int, float]:
        if not self.pipe.poll(timeout):
            raise SystemExit("consoles process did not get ready")
        msg = self.pipe.recv()
        self.ready = msg
        return msg[1], msg[2], msg[3]

    def count(self) -> tuple[int, int, int, int]:
        """(matched frames, all frames, heartbeats, sockets open) so far, all consoles."""
        self.pipe.send("count")
        if not self.pipe.poll(60):
            raise SystemExit("consoles process does not answer")
        return self.pipe.recv()[1:]

    def finish(self, timeout: float = 120) -> dict[str, Any]:
        self.pipe.send("stop")
        if not self.pipe.poll(timeout):
            raise SystemExit("consoles process did not report")
        _, result = self.pipe.recv()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
        for key in ("seqs", "times"):
            result[key] = [array("q", b) for b in result[key]]
        result["kinds"] = [array("b", b) for b in result["kinds"]]
        return result

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


class ConsoleGroup(_Draining):
    """`count` consoles spread over `procs` child processes, used as one."""

    def __init__(self, spec: ConsoleSpec, procs: int = 1) -> None:
        procs = max(1, min(procs, spec.count))
        sizes = [spec.count // procs] * procs
        sizes[0] += spec.count - sum(sizes)
        self.members = [Consoles(dataclasses.replace(spec, count=n)) for n in sizes]

    @property
    def pids(self) -> list[int]:
        return [m.pid for m in self.members]

    def wait_ready(self, timeout: float = 600) -> tuple[int, int, float]:
        ready = [m.wait_ready(timeout) for m in self.members]
        return sum(r[0] for r in ready), sum(r[1] for r in ready), max(r[2] for r in ready)

    def count(self) -> tuple[int, int, int, int]:
        counts = [m.count() for m in self.members]
        return tuple(sum(c[i] for c in counts) for i in range(4))  # type: ignore[return-value]

    def finish(self, timeout: float = 120) -> dict[str, Any]:
        """Results of all members, merged (lists concatenated, counts summed)."""
        parts = [m.finish(timeout) for m in self.members]
        merged: dict[str, Any] = {"closed_by_server": {}}
        for key in ("seqs", "times", "kinds", "heartbeats", "frames"):
            merged[key] = [x for p in parts for x in p[key]]
        for key in ("connected", "failed", "still_open"):
            merged[key] = sum(p[key] for p in parts)
        for p in parts:
            for code, n in p["closed_by_server"].items():
                merged["closed_by_server"][code] = merged["closed_by_server"].get(code, 0) + n
        return merged

    def kill(self) -> None:
        for m in self.members:
            m.kill()
