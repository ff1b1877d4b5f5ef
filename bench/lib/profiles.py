"""py-spy recordings of a server while a benchmark drives it.

Non-blocking (the server is never stopped), 250 Hz, every thread, and by
default the server's child processes too (the ingest writer process is its
own group in the profile; bench/stacks.py reads it).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def record(pid: int, out: Path, seconds: int, fmt: str = "raw", *,
           subprocesses: bool = True, stderr: int | IO[bytes] = subprocess.PIPE,
           ) -> subprocess.Popen[bytes]:
    """Start `py-spy record` on `pid` for `seconds`, writing `out` in format `fmt`."""
    cmd = ["py-spy", "record", "--pid", str(pid), "--rate", "250", "--nonblocking",
           "--duration", str(seconds), "--format", fmt, "--threads"]
    if subprocesses:
        cmd.append("--subprocesses")
    return subprocess.Popen([*cmd, "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=stderr)


def outputs(prefix: str) -> Iterator[tuple[int, str, Path]]:
    """(n, py-spy format, file) of the two recordings `--profile PREFIX` makes:
    PREFIX.txt (collapsed stacks, for bench/stacks.py), then PREFIX.svg (a flame graph)."""
    base = Path(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n, (fmt, suffix) in enumerate((("raw", ".txt"), ("flamegraph", ".svg")), start=1):
        yield n, fmt, base.with_suffix(suffix)


@contextlib.contextmanager
def recording(pid: int, out: Path, seconds: int, fmt: str, timeout: float) -> Iterator[None]:
    """py-spy on `pid` around the block: started a second before it (time to attach),
    waited for after it. A failed recording is reported, not raised."""
    spy = record(pid, out, seconds, fmt)
    time.sleep(1.0)
    yield
    _, err = spy.communicate(timeout=timeout)
    if spy.returncode != 0:
        print(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
