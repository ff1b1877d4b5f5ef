"""The `connector` command: serve, migrate, and bot-admin / user management."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from connector.accounts import integrations, users
from connector.domain import roles
from connector.settings import ConfigError, Settings, load_settings
from connector.sources import SOURCES
from connector.storage.db import DatabaseUnavailable, create_engine

T = TypeVar("T")


def _run_db(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    _migrate(settings)

    async def runner() -> T:
        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(runner())


def _migrate(settings: Settings) -> None:
    from connector.storage.migrate import upgrade

    upgrade(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from connector.app import create_app
    from connector.logs import setup_logging
    from connector.realtime.hub import CATCH_UP_SECONDS
    from connector.web.server import raise_open_files_limit

    setup_logging(settings)
    raise_open_files_limit()
    generated = _run_db(settings, lambda c: users.ensure_admin(
        c, settings.admin_username, settings.admin_password))
    if generated is not None:
        # Printed once, to the terminal only: it is not stored anywhere in clear.
        print(f"\n  First start: created admin user {settings.admin_username!r} with the "
              f"one-time password:\n\n      {generated}\n\n  Sign in and change it.\n",
              file=sys.stderr, flush=True)
    if not settings.is_sqlite and settings.bus_url.startswith("memory:"):
        logging.getLogger("connector").warning(
            "CONNECTOR_BUS_URL is memory:// on PostgreSQL: with several instances, live "
            "updates reach consoles on the other instances only through the database poll "
            "(every %g s); set CONNECTOR_BUS_URL=redis://host:6379/0", CATCH_UP_SECONDS)
    uvicorn.run(create_app(settings), **server_options(settings))
    return 0


def server_options(settings: Settings) -> dict[str, Any]:
    """How `serve` runs uvicorn (the benchmarks' baselines run with the same)."""
    from connector.web.server import http_protocol

    return {"http": http_protocol(settings.header_timeout_seconds),
            "host": settings.host, "port": settings.port, "log_config": None,
            "access_log": False, "server_header": False, "ws_max_size": 64 * 1024 + 1024,
            "ws_per_message_deflate": settings.ws_compression,
            "timeout_graceful_shutdown": 10,
            # Uvicorn would believe X-Forwarded-For/-Proto from 127.0.0.1 (or from
            # $FORWARDED_ALLOW_IPS): the app reads them itself, from the proxies the
            # operator lists in CONNECTOR_TRUSTED_PROXIES only (`connector.web.proxies`).
            "proxy_headers": False}


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    _migrate(settings)
    print("database schema is up to date")
    return 0


def _print_integration(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(out))
        return
    print(f"integration {out['id']} ({out['name']})")
    for source in SOURCES.values():
        url = out.get(source.url_field)
        if url is None:
            continue
        if source.auth == "key":  # the URL carries the key
            print(f"  {source.label} webhook URL (paste it into the bot; shown only once):")
            print(f"    {url}")
        else:
            print(f"  {source.label + ' webhook URL:':<22} {url}")
    print(f"  Channel URL:           {out['channel_url']}")
    print(f"  Verify token:          {out['verify_token']}")
    if out["previous_key_valid_until"] is not None:
        print(f"  Previous key valid until {out['previous_key_valid_until']}")


def cmd_integration_add(settings: Settings, args: argparse.Namespace) -> int:
    created = _run_db(settings, lambda c: integrations.create(
        c, name=args.name, channel_url=args.channel_url, verify_token=args.verify_token))
    _print_integration(
        integrations.describe(created.integration, settings.public_url, created.key), args.json)
    return 0


def cmd_integration_list(settings: Settings, args: argparse.Namespace) -> int:
    rows = _run_db(settings, integrations.list_all)
    outs = [integrations.describe(r, settings.public_url) for r in rows]
    if args.json:
        print(json.dumps(outs))
    else:
        for out in outs:
            _print_integration(out, False)
        if not outs:
            print("no integrations yet: connector integration add --name ... --channel-url ...")
    return 0


def cmd_integration_rotate(settings: Settings, args: argparse.Namespace) -> int:
    grace = dt.timedelta(seconds=args.grace if args.grace is not None
                         else settings.key_grace_seconds)
    created = _run_db(settings, lambda c: integrations.rotate_key(c, args.id, grace))
    if created is None:
        print(f"error: no integration {args.id!r}", file=sys.stderr)
        return 1
    _print_integration(
        integrations.describe(created.integration, settings.public_url, created.key), args.json)
    return 0


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = _run_db(settings, lambda c: users.create(c, args.username, password, args.role))
    except users.UserError as exc:
        print(f"error: {exc.field}: {exc}", file=sys.stderr)
        return 1
    print(f"user {user.username} ({user.role}) created")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connector", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="migrate the database and start the service").set_defaults(
        func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    integ = sub.add_parser("integration", help="bot endpoints").add_subparsers(
        dest="action", required=True)
    add = integ.add_parser("add", help="register a bot and its Chatlayer channel")
    add.add_argument("--name", required=True)
    add.add_argument("--channel-url", required=True)
    add.add_argument("--verify-token", default=None, help="generated when not given")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_integration_add)
    lst = integ.add_parser("list", help="list integrations")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_integration_list)
    rot = integ.add_parser("rotate-key", help="new Smartly key; the old one works for a while")
    rot.add_argument("id")
    rot.add_argument("--grace", type=float, default=None,
                     help="seconds the old key keeps working (default: 24 h)")
    rot.add_argument("--json", action="store_true")
    rot.set_defaults(func=cmd_integration_rotate)

    user = sub.add_parser("user", help="staff accounts").add_subparsers(
        dest="action", required=True)
    uadd = user.add_parser("add", help="create a user; password read from stdin")
    uadd.add_argument("username")
    uadd.add_argument("--role", required=True, choices=roles.ROLES)
    uadd.set_defaults(func=cmd_user_add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return args.func(settings, args)
    except integrations.IntegrationError as exc:
        print(f"error: --{exc.field.replace('_', '-')}: {exc}", file=sys.stderr)
        return 1
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
