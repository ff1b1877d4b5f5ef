"""`connector backup PATH` and `connector restore PATH`: SQLite only
(`storage.sqlite.backup`); on PostgreSQL each is refused with a pointer to
pg_dump/pg_restore (docs/operations.md), exit 2.

`backup` works while the service runs and writes. `restore` is refused (exit 2)
while a connector runs on the database (`storage.sqlite.inuse`); without `--yes` it
asks before replacing an existing database on a terminal, and is refused elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory

from connector.cli.common import CommandError
from connector.cli.erase import confirmed
from connector.settings import Settings
from connector.storage.migrate import alembic_config
from connector.storage.sqlite import backup, inuse

POSTGRES = ("{verb} is for SQLite; for PostgreSQL use {tool} (docs/operations.md, "
            "\"Backups\")")


def add_parsers(sub: Any) -> None:
    b = sub.add_parser("backup", help="write a consistent copy of the SQLite database, "
                                      "also while the service runs")
    b.add_argument("path", type=Path, help="the new file to write")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="replace the SQLite database by a backup (refused "
                                       "while a connector runs on it)")
    r.add_argument("path", type=Path, help="the backup to restore")
    r.add_argument("--yes", action="store_true",
                   help="replace an existing database without asking")
    r.set_defaults(func=cmd_restore)


def _database(settings: Settings, verb: str, tool: str) -> Path:
    if settings.sqlite_path is None:
        raise CommandError(POSTGRES.format(verb=verb, tool=tool), code=2)
    return settings.sqlite_path


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    database = _database(settings, "backup", "pg_dump")
    try:
        backup.backup(database, args.path)
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from None
    print(f"backed up {database} to {args.path}")
    return 0


def revisions(settings: Settings) -> set[str]:
    """Every schema revision this version of the connector knows."""
    script = ScriptDirectory.from_config(alembic_config(settings))
    return {rev.revision for rev in script.walk_revisions()}


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    database = _database(settings, "restore", "pg_restore")
    if database.exists() and database.stat().st_size and not confirmed(
            f"Replace {database} by {args.path}?", args.yes):
        raise CommandError("nothing restored")
    try:
        revision = backup.restore(args.path, database, revisions(settings))
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from None
    except inuse.InUse as exc:
        raise CommandError(str(exc), code=2) from None
    print(f"restored {args.path} to {database} (schema revision {revision}; the next "
          "start migrates it if older)")
    return 0
