"""`connector.storage.sqlite.checkpoint`: SQLite's WAL is checkpointed off the writers'
commits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from connector.storage.db import AUTOCHECKPOINT_PAGES
from connector.storage.sqlite.checkpoint import Checkpointer
from tests import builders
from tests.helpers import wait_until

pytestmark = pytest.mark.anyio


def wal_pages(path: Path) -> int:
    """Frames in the WAL not yet copied into the database (a no-op PASSIVE checkpoint)."""
    with sqlite3.connect(path) as conn:
        _busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return log - done


async def test_server_checkpoints_in_the_background(app, client, bot):
    checkpointer = app.state.checkpointer
    assert isinstance(checkpointer, Checkpointer) and checkpointer.every <= 1
    for n in range(20):
        r = await client.post(bot.smartly_path, json=builders.turn(f"u-{n}", f"hello {n}"))
        assert r.status_code == 200
    # The thread's own checkpoint copies every frame written so far (none left behind).
    last = await wait_until(lambda: _done(checkpointer), what="a checkpoint of the writes")
    assert last[0] == 0 and last[1] > 0 and last[1] == last[2]
    # The app's connections checkpoint on commit only past the safety net.
    async with app.state.store.read() as conn:
        pages = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
    assert pages == AUTOCHECKPOINT_PAGES


async def _done(checkpointer: Checkpointer) -> tuple[int, int, int] | None:
    last = checkpointer.last
    return last if last and last[1] > 0 and last[1] == last[2] else None


def test_checkpointer_copies_the_wal_then_stops(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    assert wal_pages(path) == 0  # closing the last connection checkpoints; write again
    keep = sqlite3.connect(path)
    keep.execute("PRAGMA wal_autocheckpoint=0")
    keep.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    keep.commit()
    checkpointer = Checkpointer(path, every=0.02)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while not (checkpointer.last and checkpointer.last[1] == checkpointer.last[2] > 0):
            assert time.monotonic() < deadline, checkpointer.last
            time.sleep(0.02)
    finally:
        checkpointer.stop()
        keep.close()
    assert not checkpointer._thread.is_alive()
