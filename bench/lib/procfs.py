"""/proc readers: memory, CPU time, scheduler wait, process trees, fds, load average."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (the connector's fork server and ingest writer)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def sched_seconds(pid: int) -> tuple[float, float]:
    """(on CPU, runnable but waiting for a CPU) in seconds, summed over the threads.

    From /proc/PID/task/*/schedstat. The wait is the time the process had work
    to do but the machine gave the CPU to someone else: on a shared machine
    it tells "we were slow" from "we were not scheduled".
    """
    run = wait = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                r, w, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                run += int(r)
                wait += int(w)
    return run / 1e9, wait / 1e9


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg shows them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def block_device(path: Path) -> str | None:
    """The name in /proc/diskstats of the block device that holds `path` (a partition's
    own name), or None (no such path, not on a block device, or no /sys)."""
    try:
        st = os.stat(path)
        link = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
        return link.resolve(strict=True).name
    except OSError:
        return None


def disk_writes(device: str) -> tuple[int, int] | None:
    """(write requests completed, bytes written) so far on `device`, from /proc/diskstats."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/diskstats").read_text().splitlines():
            fields = line.split()
            if len(fields) > 9 and fields[2] == device:
                return int(fields[7]), int(fields[9]) * 512
    return None
