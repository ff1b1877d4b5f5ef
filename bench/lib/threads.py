"""`ThreadStates`: where a server's threads wait (non-intrusive: /proc, no ptrace stop)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

_SYSCALLS = {"230": "sleep (SQLite busy handler)", "35": "sleep (SQLite busy handler)",
             "74": "fsync", "75": "fsync", "202": "futex (idle or GIL)",
             "232": "epoll (idle)", "281": "epoll (idle)", "7": "poll (idle)",
             "running": "busy"}


def _thread_group(name: str) -> str:
    if name == "MainThread":
        return "event loop thread"
    if name.startswith("ingest-writer"):
        return "ingest writer thread"
    if "_connection_worker_thread" in name:
        return "aiosqlite threads"
    if name.startswith("AnyIO"):
        return "thread pool (argon2 etc.)"
    return "other threads" if name else "unnamed threads (gone, or no Python frames)"


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name, from one `py-spy dump` (a brief stop)."""
    if shutil.which("py-spy") is None:
        return {}
    out = subprocess.run(["py-spy", "dump", "--pid", str(pid), "--json"],
                         capture_output=True, text=True, check=False)
    try:
        return {int(t["os_thread_id"]): t.get("thread_name") or ""
                for t in json.loads(out.stdout) if t.get("os_thread_id")}
    except (ValueError, TypeError, KeyError):
        return {}


class ThreadStates:
    """Samples what every thread of `pid` is doing, from /proc/PID/task/*/syscall.

    A background thread reads, `hz` times a second, each thread's current system
    call (or "running"). At the end the threads are named with one
    `py-spy dump` (Python 3.11 does not name OS threads) and grouped. In the
    SQLite threads a `clock_nanosleep` is SQLite's busy handler sleeping until
    the write lock is free (`usleep` in sqliteDefaultBusyCallback): time lost
    to lock waits; "busy" is a thread in user space (running Python or C code,
    on a CPU or waiting for one); a futex is an idle pool thread or a wait for
    the GIL. Unlike `py-spy record`, sampling never stops the process. It runs
    in the load generator's process, whose CPU (and the pacer's GIL) each
    sample costs: 25 Hz by default, 250 samples per thread in a 10 s round.
    """

    def __init__(self, pid: int, hz: float = 25) -> None:
        self.pid, self.period = pid, 1 / hz
        self.by_tid: dict[int, dict[str, int]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._names: dict[int, str] = {}

    def start(self) -> ThreadStates:
        self._names = thread_names(self.pid)
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, int]]:
        self._stop.set()
        self._thread.join()
        self._names.update(thread_names(self.pid))
        self.counts = {}
        for tid, per in self.by_tid.items():
            group = self.counts.setdefault(_thread_group(self._names.get(tid, "")), {})
            for state, n in per.items():
                group[state] = group.get(state, 0) + n
        return self.counts

    def _run(self) -> None:
        base = f"/proc/{self.pid}/task"
        while not self._stop.wait(self.period):
            self.samples += 1
            try:
                tids = os.listdir(base)
            except OSError:
                return
            for tid in tids:
                try:
                    call = Path(f"{base}/{tid}/syscall").read_text().split()[0]
                except (OSError, IndexError):
                    continue
                state = _SYSCALLS.get(call, "other system call")
                per = self.by_tid.setdefault(int(tid), {})
                per[state] = per.get(state, 0) + 1

    def lines(self, groups: Sequence[str] = ("event loop thread", "ingest writer thread",
                                             "aiosqlite threads")) -> list[str]:
        out = []
        for g in groups:
            per = self.counts.get(g)
            if not per or not self.samples:
                continue
            # In thread-seconds per second: several aiosqlite threads can sleep at once.
            shown = ", ".join(f"{k} {100 * v / self.samples:.0f}%"
                              for k, v in sorted(per.items(), key=lambda kv: -kv[1])
                              if 100 * v / self.samples >= 0.5)
            out.append(f"{g}: {shown}")
        return out
