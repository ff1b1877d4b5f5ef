"""WAL checkpoints in a thread of their own, so that commits do not run them."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("connector.db")


class Checkpointer:
    """Copies SQLite's WAL into the database file from a thread of its own.

    Left to SQLite, the commit that takes the WAL past `wal_autocheckpoint`
    pages (`db.AUTOCHECKPOINT_PAGES`) checkpoints before it returns, so under
    load some ingest commit would carry the extra writes and fsync. Here a
    PASSIVE checkpoint (it never waits for, nor blocks, readers or writers)
    runs every `every` seconds on a connection of its own, so the WAL stays
    small and commits stay short. `last` is the last checkpoint's (busy, WAL
    frames, frames checkpointed).
    """

    def __init__(self, path: Path, every: float = 0.5) -> None:
        self.path = path
        self.every = every
        self.last: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        try:
            while not self._stop.wait(self.every):
                try:
                    self.last = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    log.exception("sqlite: checkpoint failed (commits will checkpoint instead)")
        finally:
            conn.close()
