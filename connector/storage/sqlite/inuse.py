"""Whether a SQLite database is in use by a running connector: a lock file beside it.

A running app holds a shared `flock` on `<database>.lock` for its whole life (every
instance on the file may hold it at once); `connector restore` takes it exclusively,
without waiting, so it is refused while any connector runs on the file, and a connector
starting during a restore is refused in turn. The lock goes with the process, however
it ends (no stale lock after a crash). Where `fcntl` does not exist (Windows) nothing
is locked and `restore` relies on its `BEGIN EXCLUSIVE` check alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None  # type: ignore[assignment]


class InUse(Exception):
    """The database is in use (a connector runs on it), or being restored."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def _open(database: Path) -> int:
    database.parent.mkdir(parents=True, exist_ok=True)
    return os.open(lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)


class Held:
    """The shared lock of a running connector on `database`; `release()` at its end."""

    def __init__(self, database: Path) -> None:
        self._fd: int | None = None
        if fcntl is None:  # pragma: no cover
            return
        fd = _open(database)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InUse(f"{database} is being restored (connector restore); start again "
                        "once it has finished") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its lock
            self._fd = None


@contextlib.contextmanager
def exclusive(database: Path) -> Iterator[None]:
    """Hold `database` alone, or `InUse` at once when a connector runs on it."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = _open(database)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"{database} is in use by a running connector; stop it first") \
                from None
        yield
    finally:
        os.close(fd)
