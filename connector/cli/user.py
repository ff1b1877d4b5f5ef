"""`connector user add|list|passwd|disable|enable`: staff accounts (each change recorded
in the audit trail, by `cli` from `local`).

A password is never echoed nor taken as an argument (it would sit in the shell's
history and the process list): it is prompted for twice on a terminal, else read
as one line from stdin (`--password-stdin` says so explicitly).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from connector.accounts import users
from connector.accounts.security import hash_password
from connector.cli.common import CommandError, fail, run_db
from connector.domain import audit, roles
from connector.domain.errors import Conflict, NotFound
from connector.settings import Settings
from connector.storage.models import User


def add_parsers(sub: Any) -> None:
    user = sub.add_parser("user", help="staff accounts").add_subparsers(
        dest="action", required=True)
    add = user.add_parser("add", help="create a user; password prompted for, or read "
                                      "from stdin")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=roles.ROLES)
    add.add_argument("--must-change-password", action="store_true",
                     help="the user must choose a new password at the first sign-in")
    _password_stdin(add)
    add.set_defaults(func=cmd_user_add)
    lst = user.add_parser("list", help="list users")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_user_list)
    passwd = user.add_parser("passwd", help="set a user's password (their sessions end)")
    passwd.add_argument("username")
    passwd.add_argument("--must-change-password", action="store_true",
                        help="the user must choose another at the next sign-in")
    _password_stdin(passwd)
    passwd.set_defaults(func=cmd_user_passwd)
    for action, helptext in (("disable", "a disabled user cannot sign in; sessions end"),
                             ("enable", "let a disabled user sign in again")):
        p = user.add_parser(action, help=helptext)
        p.add_argument("username")
        p.set_defaults(func=cmd_user_enable, disabled=action == "disable")


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password as one line from stdin instead of prompting")


def read_password(args: argparse.Namespace) -> str:
    """Prompted twice without echo on a terminal; one line of stdin otherwise."""
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise CommandError("passwords differ")
    return password


def _checked_hash(password: str) -> str:
    try:
        users.check_password(password)
    except users.UserError as exc:
        raise CommandError(f"{exc.field}: {exc}") from None
    return hash_password(password)


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    password = read_password(args)
    try:
        user = run_db(settings, lambda c: _add(c, args.username, password, args.role,
                                               args.must_change_password))
    except users.UserError as exc:
        return fail(f"{exc.field}: {exc}")
    print(f"user {user.username} ({user.role}) created")
    return 0


async def _add(conn: AsyncConnection, username: str, password: str, role: str,
               must_change_password: bool) -> User:
    user = await users.create(conn, username, password, role,
                              must_change_password=must_change_password)
    await audit.record(conn, audit.CLI, "user.created", "user", user.id, audit.diff(
        {}, user.model_dump(), ("username", "role", "must_change_password")))
    return user


async def _passwd(conn: AsyncConnection, username: str, password_hash: str,
                  must_change: bool) -> User:
    user = await users.reset_password(conn, username, password_hash, must_change=must_change)
    await audit.record(conn, audit.CLI, "user.password_reset", "user", user.id,
                       {"password": {"changed": True}, "must_change_password": must_change})
    return user


async def _set_disabled(conn: AsyncConnection, username: str, disabled: bool) -> User:
    user = await users.set_disabled(conn, username, disabled)
    if user.disabled != disabled:
        await audit.record(conn, audit.CLI, "user.disabled" if disabled else "user.enabled",
                           "user", user.id, {"disabled": {"before": user.disabled,
                                                          "after": disabled}})
    return user


def user_out(user: User) -> dict[str, Any]:
    """A user as `user list --json` shows them (no password hash)."""
    return {"id": user.id, "username": user.username, "role": user.role,
            "display_name": user.display_name, "disabled": user.disabled,
            "must_change_password": user.must_change_password,
            "created_at": user.created_at.isoformat()}


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    outs = [user_out(u) for u in run_db(settings, users.list_all)]
    if args.json:
        print(json.dumps(outs))
        return 0
    print(f"{'USERNAME':<24} {'ROLE':<11} {'STATE':<9} DISPLAY NAME")
    for out in outs:
        state = ("disabled" if out["disabled"]
                 else "new pw" if out["must_change_password"] else "active")
        print(f"{out['username']:<24} {out['role']:<11} {state:<9} "
              f"{out['display_name'] or ''}".rstrip())
    return 0


def cmd_user_passwd(settings: Settings, args: argparse.Namespace) -> int:
    password_hash = _checked_hash(read_password(args))
    try:
        user = run_db(settings, lambda c: _passwd(c, args.username, password_hash,
                                                  args.must_change_password))
    except NotFound as exc:
        return fail(str(exc))
    print(f"password of {user.username} changed; their sessions ended")
    return 0


def cmd_user_enable(settings: Settings, args: argparse.Namespace) -> int:
    try:
        user = run_db(settings, lambda c: _set_disabled(c, args.username, args.disabled))
    except (NotFound, Conflict) as exc:
        return fail(str(exc))
    done = "disabled; their sessions ended" if args.disabled else "enabled"
    print(f"user {user.username} {done}")
    return 0
