"""Process-wide memory settings, applied once a process is ready."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Leave what startup made (modules, the app, its resources: long-lived) out of the
    garbage collector's full collections, which otherwise walk all of it: measured
    pauses of 90-120 ms under load with 100 consoles, stalling every request and
    console for as long (docs/benchmarks.md). Called once per process, when it is ready:
    by the server (`web.server.BoundServer`) and by the ingest writer process.
    """
    gc.collect()
    gc.freeze()
