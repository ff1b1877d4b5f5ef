"""Summarise a py-spy profile (`py-spy record --format raw`, collapsed stacks).

    python3 bench/stacks.py /tmp/ingest-profile.txt [--top 40]

Prints, for the server's event-loop thread (MainThread), its SQLite worker
threads and, in a profile taken with `--subprocesses` (as `bench/latency.py
--profile` does), the ingest writer process separately:

* where the samples are spent by layer, each sample charged to the innermost
  frame's layer (HTTP server stack, connector code, SQLAlchemy, aiosqlite,
  pydantic, json, logging, event loop internals);
* which part of the request the samples belong to (the ingest writer task, the
  webhook request handler, other);
* the functions with the most inclusive and self samples.

aiosqlite worker threads blocked in `queue.get()` waiting for work are idle,
not CPU: py-spy cannot tell, so those samples are dropped.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

LAYERS = (
    ("aiosqlite", "aiosqlite (thread hand-off)"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("pydantic", "pydantic"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("connector/", "connector code"),
    ("starlette/", "HTTP stack (starlette)"),
    ("uvicorn/", "HTTP stack (uvicorn)"),
    ("asyncio/", "event loop (asyncio, uvloop C code)"),
)
PARTS = (
    ("IngestWriter._run", "ingest writer task (group commit)"),
    ("hooks.py", "webhook request handler"),
    ("RequestResponseCycle.run_asgi", "HTTP request (outside the handler)"),
    ("IntegrationCache", "integration lookup"),
)


def _idle_pattern() -> re.Pattern[str]:
    """The aiosqlite worker's `tx.get()` line: waiting for work, not running."""
    line = 59  # aiosqlite 0.22
    try:
        import inspect

        import aiosqlite.core

        source, start = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
        line = next(start + i for i, text in enumerate(source) if "tx.get(" in text)
    except (ImportError, OSError, StopIteration, AttributeError):
        pass
    return re.compile(rf"_connection_worker_thread \(aiosqlite/core\.py:{line}\)$")


IDLE = _idle_pattern()


def layer(frames: list[str]) -> str:
    if frames and frames[-1].startswith("_connection_worker_thread"):
        return "SQLite itself (C code run by the aiosqlite worker)"
    for frame in reversed(frames):
        for needle, name in LAYERS:
            if needle in frame:
                return name
    return "other"


def part(frames: list[str]) -> str:
    joined = ";".join(frames)
    for needle, name in PARTS:
        if needle in joined:
            return name
    return "other (event loop, timers, callbacks)"


def strip(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def summarise(path: str, top: int) -> None:
    groups: dict[str, list[tuple[list[str], int]]] = {"event loop thread": [],
                                                      "SQLite worker threads": [],
                                                      "ingest writer process": []}
    idle = 0
    threads: set[str] = set()
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            n = int(count)
            if frames[0].startswith("process "):  # py-spy --subprocesses
                frames = frames[1:]
                # The writer child's samples all pass through its entry point, `_child`
                # (the server's side of the protocol lives in the same module).
                if any(f.startswith("_child (") and "ingest/process.py" in f for f in frames):
                    groups["ingest writer process"].append((frames[1:], n))
                    continue
            if "_connection_worker_thread" in frames[0]:
                threads.add(frames[0].split(")")[0])
            if IDLE.search(frames[-1]):
                idle += n
                continue
            name = "event loop thread" if "MainThread" in frames[0] else "SQLite worker threads"
            groups[name].append((frames[1:], n))
    print(f"{path}: idle aiosqlite samples dropped: {idle}; "
          f"aiosqlite worker threads seen: {len(threads)} (one per SQLite connection opened)")
    for name, samples in groups.items():
        total = sum(n for _, n in samples)
        if not total:
            continue
        print(f"\n== {name}: {total} samples")
        for title, key in (("by layer (innermost frame)", layer), ("by part of the work", part)):
            counts: Counter[str] = Counter()
            for frames, n in samples:
                counts[key(frames)] += n
            print(f"  {title}:")
            for k, v in counts.most_common():
                print(f"    {v / total:6.1%}  {k}")
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        for frames, n in samples:
            for f in {strip(f) for f in frames}:
                inclusive[f] += n
            if frames:
                own[strip(frames[-1])] += n
        print(f"  top {top} inclusive:")
        for k, v in inclusive.most_common(top):
            print(f"    {v / total:6.1%}  {k}")
        print(f"  top {top} self:")
        for k, v in own.most_common(top):
            print(f"    {v / total:6.1%}  {k}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    summarise(args.profile, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
