"""`paced_load`: the open-loop load generator, and what it reports.

Times are CLOCK_MONOTONIC, which all processes of the machine share: a send
time taken here can be compared with an arrival time taken in another process
(a console, the fake channel).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .figures import summary
from .rawhttp import RawConn, RawPool


@dataclass
class LoadResult:
    rate: float
    sent: int
    send_ns: array  # CLOCK_MONOTONIC ns just before each request was written, by seq
    done_ns: array  # CLOCK_MONOTONIC ns when its response had been read
    lag_ms: dict[str, float]  # send time minus scheduled time
    latency_ms: dict[str, float]  # request to response
    statuses: dict[int, int]
    achieved: float  # requests per second actually sent over the run
    answered_by_end: int  # responses in by the time the schedule ended

    def line(self) -> str:
        bad = {k: v for k, v in self.statuses.items() if not 200 <= k < 300}
        return (f"load: {self.sent} requests, target {self.rate:.0f}/s, sent at "
                f"{self.achieved:.1f}/s; send lag behind schedule p50 "
                f"{self.lag_ms['p50']:.2f} ms, p99 {self.lag_ms['p99']:.2f} ms, max "
                f"{self.lag_ms['max']:.1f} ms; response p50 {self.latency_ms['p50']:.1f} ms, "
                f"p99 {self.latency_ms['p99']:.1f} ms; non-2xx {sum(bad.values())}"
                + (f" {bad}" if bad else ""))

    def keeps_up(self, tolerance: float = 0.97) -> bool:
        return self.achieved >= tolerance * self.rate and self.lag_ms["p99"] < 50


async def paced_load(pool: RawPool, requests: Sequence[bytes], rate: float,
                     on_sent: Callable[[int, int], None] | None = None,
                     offset: float = 0.0) -> LoadResult:
    """Send `requests[i]` at t0 + i/rate (open loop), each on the next free connection.

    t0 is 20 ms from now plus `offset` seconds: loads started together with
    offsets k/(N*rate), k < N, interleave into one even stream at N*rate.

    A token bucket with no burst: the pacer releases request i once its time
    has come; a free connection takes it and writes it at once. If every
    connection is waiting for an answer, releases queue up and the send lag
    grows: that is reported (the achieved rate and the lag), not hidden.
    """
    n = len(requests)
    send_ns = array("q", bytes(8 * n))
    done_ns = array("q", bytes(8 * n))
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    t0 = time.monotonic_ns() + 20_000_000 + int(offset * 1e9)
    period = 1e9 / rate

    async def worker(conn: RawConn) -> None:
        while True:
            i = await queue.get()
            if i < 0:
                return
            t = time.monotonic_ns()
            send_ns[i] = t
            if on_sent is not None:
                on_sent(i, t)
            try:
                status, _ = await conn.roundtrip(requests[i])
            except (OSError, asyncio.IncompleteReadError):
                status = 599
            done_ns[i] = time.monotonic_ns()
            statuses[status] = statuses.get(status, 0) + 1

    workers = [asyncio.create_task(worker(c)) for c in pool.conns]
    released = 0
    while released < n:
        now = time.monotonic_ns()
        due = min(n, int((now - t0) / period) + 1) if now >= t0 else 0
        while released < due:
            queue.put_nowait(released)
            released += 1
        # Sleep until the next release is due (uvloop's timer resolution is 1 ms).
        await asyncio.sleep(max(0.0, (t0 + released * period - time.monotonic_ns()) / 1e9))
    end_schedule = time.monotonic_ns()
    for _ in workers:
        queue.put_nowait(-1)
    await asyncio.gather(*workers)
    answered_by_end = sum(1 for t in done_ns if 0 < t <= end_schedule)
    lags = [(send_ns[i] - (t0 + i * period)) / 1e6 for i in range(n)]
    lat = [(done_ns[i] - send_ns[i]) / 1e6 for i in range(n)]
    span = (send_ns[n - 1] - send_ns[0]) / 1e9 if n > 1 else 1.0
    return LoadResult(rate=rate, sent=n, send_ns=send_ns, done_ns=done_ns, lag_ms=summary(lags),
                      latency_ms=summary(lat), statuses=statuses,
                      achieved=(n - 1) / span if span > 0 else float("nan"),
                      answered_by_end=answered_by_end)


async def spread_load(ports: Sequence[int], make: Callable[[int, int], bytes], total: int,
                      rate: float, connections: int) -> list[LoadResult]:
    """`total` requests at `rate` in all, spread over the servers on `ports`.

    Request s (`make(s, port)`) goes to server s % n; each server's load runs at
    rate/n, offset so the n loads interleave into one even stream, over
    `connections` // n keep-alive connections each. `send_times` merges their
    send times back into request order.
    """
    n = len(ports)
    pools = [await RawPool(port, max(1, connections // n)).open() for port in ports]
    try:
        return list(await asyncio.gather(*(
            paced_load(pool, [make(s, port) for s in range(k, total, n)], rate / n,
                       offset=k / rate)
            for k, (pool, port) in enumerate(zip(pools, ports, strict=True)))))
    finally:
        for pool in pools:
            await pool.close()


def send_times(loads: Sequence[LoadResult]) -> array:
    """The send times of `spread_load`'s loads, by request number over all of them."""
    n = len(loads)
    out = array("q", bytes(8 * sum(load.sent for load in loads)))
    for k, load in enumerate(loads):
        out[k::n] = load.send_ns
    return out
