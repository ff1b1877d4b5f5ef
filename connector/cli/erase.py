"""`connector erase --integration ID --end-user ID [--yes]`: erase one end user
(`domain.erasure`), recorded in the audit trail by `cli` from `local`.

Without `--yes` it asks for confirmation on a terminal, and is refused elsewhere (a
script says `--yes`). It prints what was erased as JSON; never the end user id.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from connector.cli.common import CommandError, run_db
from connector.domain import audit, erasure
from connector.domain.errors import NotFound
from connector.settings import Settings


def add_parsers(sub: Any) -> None:
    erase = sub.add_parser("erase", help="erase one end user's texts, raw bodies and id "
                                         "(their timings stay, anonymous)")
    erase.add_argument("--integration", required=True, help="the integration's id")
    erase.add_argument("--end-user", required=True, help="the end user's id")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.set_defaults(func=cmd_erase)


def confirmed(question: str, yes: bool) -> bool:
    """`--yes`, or the person at the terminal answered y; refused without a terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CommandError("not a terminal: add --yes to confirm")
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


def cmd_erase(settings: Settings, args: argparse.Namespace) -> int:
    if not confirmed(f"Erase end user {args.end_user!r} of integration {args.integration}? "
                     "This cannot be undone.", args.yes):
        print("nothing erased", file=sys.stderr)
        return 1

    async def look(conn: AsyncConnection) -> erasure.Mentions:
        return await erasure.scan(conn, args.integration, args.end_user)

    # The long scans first, in a read (no write lock held), then the short erasure.
    found = run_db(settings, look, readonly=True)

    async def work(conn: AsyncConnection) -> erasure.Erased:
        try:
            return await erasure.erase(conn, args.integration, args.end_user, audit.CLI,
                                       found)
        except NotFound:
            raise CommandError(f"--integration: no integration {args.integration}") from None

    print(json.dumps(run_db(settings, work).as_dict(), indent=2))
    return 0
