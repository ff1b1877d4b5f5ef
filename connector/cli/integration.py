"""`connector integration add|list|rotate-key|rotate-signing-secret`: bot endpoints
(`integration_state`: disable, enable, delete); changes recorded in the audit trail."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from collections.abc import Awaitable
from typing import Any

from connector.accounts import integrations
from connector.accounts.integration_state import audit_fields
from connector.cli import integration_state
from connector.cli.common import fail, run_db
from connector.domain import audit
from connector.settings import Settings
from connector.sources import SOURCES


def add_parsers(sub: Any) -> None:
    integ = sub.add_parser("integration", help="bot endpoints").add_subparsers(
        dest="action", required=True)
    add = integ.add_parser(
        "add", help="register a bot: Smartly with its Chatlayer channel, or a Chatlayer "
                    "bot's Offloading webhook")
    add.add_argument("--kind", choices=integrations.KINDS, default="smartly",
                     help="smartly (default): Smartly webhooks in, replies through "
                          "--channel-url; chatlayer-offloading: Chatlayer's Offloading "
                          "webhook in, replies through its API (--api-url, --api-token)")
    add.add_argument("--name", required=True)
    add.add_argument("--channel-url", default=None, help="the Chatlayer Webhook channel "
                                                         "(smartly)")
    add.add_argument("--api-url", default=None, help="Chatlayer's API, e.g. "
                                                     "https://api.chatlayer.ai "
                                                     "(chatlayer-offloading)")
    add.add_argument("--api-token", default=None, help="Chatlayer API bearer token "
                                                       "(chatlayer-offloading)")
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
    sig = integ.add_parser("rotate-signing-secret",
                           help="new secret signing replies; the old one signs too for a while")
    sig.add_argument("id")
    sig.add_argument("--grace", type=float, default=None,
                     help="seconds the old secret keeps signing (default: 24 h)")
    sig.add_argument("--json", action="store_true")
    sig.set_defaults(func=cmd_integration_rotate_signing_secret)
    integration_state.add_parsers(integ)


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
    if out["kind"] == integrations.OFFLOADING:
        print(f"  Chatlayer API URL:     {out['api_url']}")
        print(f"  Bot:                   {out['bot_id'] or '(bound by its first event)'}")
        print(f"  Verify token:          {out['verify_token']}  (paste it into Chatlayer's "
              "Offloading settings)")
    else:
        print(f"  Channel URL:           {out['channel_url']}")
        print(f"  Verify token:          {out['verify_token']}")
    if out["previous_key_valid_until"] is not None:
        print(f"  Previous key valid until {out['previous_key_valid_until']}")
    if out.get("signing_secret") is not None:
        print("  Signing secret (verifies our replies' webhook-signature; shown only once):")
        print(f"    {out['signing_secret']}")
    if out["previous_signing_secret_valid_until"] is not None:
        print(f"  Previous signing secret signs until "
              f"{out['previous_signing_secret_valid_until']}")


def cmd_integration_add(settings: Settings, args: argparse.Namespace) -> int:
    # Where the URLs lead (DNS), before anything is written.
    asyncio.run(integrations.check_reachable(settings.outbound_networks, vars(args)))
    async def add(c: Any) -> integrations.Created:
        created = await integrations.create(
            c, name=args.name, kind=args.kind, channel_url=args.channel_url,
            verify_token=args.verify_token, api_url=args.api_url, api_token=args.api_token)
        await audit.record(c, audit.CLI, "integration.created", "integration",
                           created.integration.id,
                           audit_fields({}, created.integration))
        return created

    created = run_db(settings, add)
    _print_integration(integrations.describe(created.integration, settings.public_url,
                                             created.key, created.integration.signing_secret),
                       args.json)
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


async def _audited(rotation: Awaitable[integrations.Created | None], conn: Any, action: str,
                   changes: dict[str, Any]) -> integrations.Created | None:
    """`rotation`'s result, recorded as `action` in its transaction when there was one."""
    created = await rotation
    if created is not None:
        await audit.record(conn, audit.CLI, action, "integration", created.integration.id,
                           changes)
    return created


def cmd_integration_rotate(settings: Settings, args: argparse.Namespace) -> int:
    grace = dt.timedelta(seconds=args.grace if args.grace is not None
                         else settings.key_grace_seconds)
    created = run_db(settings, lambda c: _audited(
        integrations.rotate_key(c, args.id, grace), c, "integration.key_rotated",
        {"key": {"changed": True}, "grace_seconds": grace.total_seconds()}))
    if created is None:
        return fail(f"no integration {args.id!r}")
    _print_integration(
        integrations.describe(created.integration, settings.public_url, created.key), args.json)
    return 0


def cmd_integration_rotate_signing_secret(settings: Settings, args: argparse.Namespace) -> int:
    grace = dt.timedelta(seconds=args.grace if args.grace is not None
                         else settings.key_grace_seconds)
    created = run_db(settings, lambda c: _audited(
        integrations.rotate_signing_secret(c, args.id, grace), c,
        "integration.signing_secret_rotated",
        {"signing_secret": {"changed": True}, "grace_seconds": grace.total_seconds()}))
    if created is None:
        return fail(f"no integration {args.id!r}")
    _print_integration(integrations.describe(created.integration, settings.public_url,
                                             signing_secret=created.key), args.json)
    return 0
