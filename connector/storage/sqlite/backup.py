"""Backups of a SQLite database, and their restore (`connector backup`, `restore`).

`backup` copies a database that may be in use, with SQLite's online backup API
(`sqlite3.Connection.backup`): the copy is one consistent snapshot (one read
transaction in WAL mode, which blocks no writer), written to a temporary file beside
the target, checked (`quick_check`) and renamed into place, so a target never holds a
half-written copy.

`restore` checks the backup (a SQLite database whose `alembic_version` is one of our
revisions: an older one is migrated by the next `serve`; a newer one is refused), then,
holding the database alone (`inuse.exclusive`: no connector runs on it, and a
`BEGIN EXCLUSIVE` within `BUSY_MS` succeeds: no other process writes), copies it over
the database, having removed the old database's WAL and shared-memory files, which
belong to the replaced file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Collection
from pathlib import Path

from connector.storage.sqlite import inuse

#: How long `restore` waits for another process's write transaction to end.
BUSY_MS = 2000


class BackupError(Exception):
    """A backup or restore refused or failed; the message is one line."""


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.partial")


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """The online backup of `source` into `target`, via a temporary file and a rename."""
    partial = _temporary(target)
    partial.unlink(missing_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(partial)) as dest:
            source.backup(dest)
            # A single file that needs no WAL beside it.
            dest.execute("PRAGMA journal_mode=DELETE")
            (ok,) = dest.execute("PRAGMA quick_check").fetchone()
            if ok != "ok":
                raise BackupError(f"the copy failed its integrity check: {ok}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def backup(database: Path, target: Path) -> None:
    """Write a consistent copy of `database` (in use or not) to `target` (a new file)."""
    if not database.is_file():
        raise BackupError(f"no database at {database}")
    if target.exists():
        raise BackupError(f"{target} exists; give a new file name")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent}")
    uri = f"{database.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=BUSY_MS / 1000)) as src:
        try:
            _copy(src, target)
        except sqlite3.Error as exc:
            raise BackupError(f"backup failed: {exc}") from None


def revision_of(path: Path) -> str:
    """The schema revision of the SQLite database at `path`, or `BackupError`."""
    if not path.is_file():
        raise BackupError(f"no file {path}")
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path} is not a SQLite database")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            (ok,) = conn.execute("PRAGMA quick_check").fetchone()
            if ok != "ok":
                raise BackupError(f"{path} failed its integrity check: {ok}")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a connector database ({exc})") from None
    if row is None:
        raise BackupError(f"{path} is not a connector database (no schema revision)")
    return str(row[0])


def restore(backup_path: Path, database: Path, revisions: Collection[str]) -> str:
    """Put the backup at `backup_path` in place of `database`; its schema revision.

    Refused (`BackupError`, or `inuse.InUse`) when the backup is not a connector database
    of a known revision, or while the database is in use."""
    revision = revision_of(backup_path)
    if revision not in revisions:
        raise BackupError(f"{backup_path} has schema revision {revision}, unknown to this "
                          "version of the connector (made by a newer one?)")
    if database.resolve() == backup_path.resolve():
        raise BackupError("the backup is the database itself")
    with inuse.exclusive(database):
        busy: sqlite3.Connection | None = None
        if database.exists():
            busy = sqlite3.connect(database, timeout=BUSY_MS / 1000, isolation_level=None)
            try:
                busy.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError:
                busy.close()
                raise inuse.InUse(f"{database} is in use by another process (a write did "
                                  f"not end within {BUSY_MS} ms); stop it first") from None
        if busy is not None:
            busy.rollback()
            busy.close()
        for suffix in ("-wal", "-shm", "-journal"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        uri = f"{backup_path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as src:
            _copy(src, database)
    return revision
