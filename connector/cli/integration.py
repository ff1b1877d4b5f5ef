"""`connector integration add|list|rotate-key`: bot endpoints."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from connector.accounts import integrations
from connector.cli.common import fail, run_db
from connector.settings import Settings
from connector.sources import SOURCES


def add_parsers(sub: Any) -> None:
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
    created = run_db(settings, lambda c: integrations.create(
        c, name=args.name, channel_url=args.channel_url, verify_token=args.verify_token))
    _print_integration(
        integrations.describe(created.integration, settings.public_url, created.key), args.json)
    return 0


def cmd_integration_list(settings: Settings, args: argparse.Namespace) -> int:
    rows = run_db(settings, integrations.list_all)
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
    created = run_db(settings, lambda c: integrations.rotate_key(c, args.id, grace))
    if created is None:
        return fail(f"no integration {args.id!r}")
    _print_integration(
        integrations.describe(created.integration, settings.public_url, created.key), args.json)
    return 0
