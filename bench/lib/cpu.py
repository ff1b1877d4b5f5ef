"""`CpuMeter`: the CPU use of some processes over a measurement."""

from __future__ import annotations

import time
from collections.abc import Callable

from .procfs import cpu_seconds, sched_seconds


class CpuMeter:
    """CPU use of some processes between `start()` and `stop()`, as % of one core.

    A name stands for one process, or for several given as a list: pass a
    server's `process_tree` (the connector's ingest writer runs in a child
    process, and its CPU is the server's). Also the time each was runnable but waiting for a CPU
    (`sched_seconds`): CPU + wait near 100% means the process always had work,
    i.e. it was CPU-bound, on whatever share of the machine it got.
    """

    def __init__(self, pids: dict[str, int | list[int]]) -> None:
        self.pids = pids
        self.trees = {k: p if isinstance(p, list) else [p] for k, p in pids.items()}
        self._t0 = 0.0
        self._c0: dict[str, float] = {}
        self._w0: dict[str, float] = {}
        self.seconds = 0.0
        self.cpu_s: dict[str, float] = {}
        self.percent: dict[str, float] = {}
        self.wait_percent: dict[str, float] = {}

    def _cpu(self, name: str) -> float:
        return sum(_or_zero(cpu_seconds, p) for p in self.trees[name])

    def _wait(self, name: str) -> float:
        return sum(sched_seconds(p)[1] for p in self.trees[name])

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._c0 = {k: self._cpu(k) for k in self.pids}
        self._w0 = {k: self._wait(k) for k in self.pids}

    def stop(self) -> dict[str, float]:
        dt = self.seconds = time.monotonic() - self._t0
        self.cpu_s = {k: self._cpu(k) - self._c0[k] for k in self.pids}
        self.percent = {k: 100 * v / dt for k, v in self.cpu_s.items()}
        self.wait_percent = {k: 100 * (self._wait(k) - self._w0[k]) / dt for k in self.pids}
        return self.percent

    def line(self) -> str:
        def name(k: str) -> str:
            n = len(self.trees.get(k, ()))
            return f"{k} ({n} processes)" if n > 1 else k
        return ", ".join(f"{name(k)} {v:.0f}% (+{self.wait_percent.get(k, 0):.0f}% waiting for a "
                         "CPU)" for k, v in self.percent.items())


def _or_zero(f: Callable[[int], float], pid: int) -> float:
    try:
        return f(pid)
    except OSError:  # a process that ended since start()
        return 0.0
