"""The `connector` command: serve, migrate, and bot-admin / user management.

One module per group of subcommands, each adding its parsers (`add_parsers`):
`serve` (serve, migrate), `integration`, `user`, `erase` (one end user's data),
`backup` (backup and restore of SQLite); `common` holds what they share. Every
refusal is one `error: ...` line on stderr; exit 1 for a refused input, 2 for
configuration, database or port problems (nothing to retry as is).
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from connector.accounts import integrations
from connector.cli import backup, erase, integration, serve, user
from connector.cli.common import CommandError
from connector.cli.serve import server_options
from connector.settings import ConfigError, load_settings
from connector.storage.db import DatabaseUnavailable

__all__ = ["build_parser", "main", "server_options", "version"]

DISTRIBUTION = "handover-connector"


def version() -> str:
    """The installed package's version (its metadata, from pyproject.toml)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connector", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"connector {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (serve, integration, user, erase, backup):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(settings, args))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except integrations.IntegrationError as exc:
        print(f"error: --{exc.field.replace('_', '-')}: {exc}", file=sys.stderr)
        return 1
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
