"""`connector integration disable|enable|delete`: an integration stopped, started again,
or removed (`accounts.integration_state`), each recorded in the audit trail by `cli`
from `local`. Running servers see the change within `integrations.CACHE_SECONDS`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from connector.accounts import integration_state
from connector.cli.common import CommandError, fail, migrate, run_db
from connector.domain import audit
from connector.domain.errors import Conflict, NotFound
from connector.settings import Settings
from connector.storage.db import create_engine


def add_parsers(integ: Any) -> None:
    """Add the subcommands to `connector integration`'s parsers."""
    for action, helptext in (
            ("disable", "refuse its webhooks (403, nothing stored); its replies wait"),
            ("enable", "take its webhooks again; its waiting replies go out")):
        p = integ.add_parser(action, help=helptext)
        p.add_argument("id")
        p.set_defaults(func=cmd_set_disabled, disabled=action == "disable")
    delete = integ.add_parser("delete", help="delete an integration (asks first)")
    delete.add_argument("id")
    delete.add_argument("--with-conversations", action="store_true",
                        help="delete its conversations, messages and tickets too "
                             "(otherwise refused while it has any)")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=cmd_delete)


def cmd_set_disabled(settings: Settings, args: argparse.Namespace) -> int:
    try:
        row = run_db(settings, lambda c: integration_state.set_disabled(
            c, args.id, args.disabled, audit.CLI))
    except NotFound:
        return fail(f"no integration {args.id!r}")
    print(f"integration {row.id} ({row.name}) {'disabled' if args.disabled else 'enabled'}")
    return 0


def _confirm(args: argparse.Namespace) -> None:
    if args.yes:
        return
    what = "and all its conversations " if args.with_conversations else ""
    print(f"Delete integration {args.id} {what}for good? Type its id to confirm: ",
          end="", flush=True)
    if sys.stdin.readline().strip() != args.id:
        raise CommandError("not confirmed; nothing deleted")


def cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    _confirm(args)
    migrate(settings)

    async def run() -> dict[str, Any]:
        engine = create_engine(settings)
        try:
            return await integration_state.delete(
                engine.begin, args.id, audit.CLI, with_conversations=args.with_conversations)
        finally:
            await engine.dispose()

    try:
        deleted = asyncio.run(run())
    except NotFound:
        return fail(f"no integration {args.id!r}")
    except Conflict as exc:
        return fail(f"{exc}; --with-conversations deletes them too")
    print(f"integration {deleted['id']} ({deleted['name']}) deleted, with "
          f"{deleted['conversations']} conversation(s)")
    return 0
