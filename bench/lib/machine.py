"""What a run was measured on: the machine, and the checkout benchmarked."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def machine() -> str:
    """CPUs, memory, Python, SQLite, and the event loop and HTTP parser uvicorn will use."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401
        http = "httptools"
    except ImportError:
        http = "h11"
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    return (f"{os.cpu_count()} CPU ({model}), {mem} RAM, Python {sys.version.split()[0]}, "
            f"SQLite {sqlite3.sqlite_version}, uvicorn loop={loop} http={http}")


def describe(source: Path) -> str:
    """The checkout benchmarked: path, commit, and whether connector/ has local changes."""
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--",
                                "connector"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{source} (not a git checkout)"
    return f"{source} at {commit}" + (" with local changes in connector/" if dirty else "")
