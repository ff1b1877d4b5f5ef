"""`connector serve` and `connector migrate`.

`serve` checks what an operator gets wrong first, each as one line and exit 2:
the port (bound before any migration runs, and kept for uvicorn, so nobody can
take it in between), then the database (`DatabaseUnavailable`, from the
migration's first connection).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import Any

from connector.accounts import users
from connector.cli.common import CommandError, migrate, run_db
from connector.cli.settings_help import settings_epilog
from connector.settings import Settings

log = logging.getLogger("connector")


def add_parsers(sub: Any) -> None:
    serve = sub.add_parser(
        "serve", help="migrate the database and start the service",
        description="Bind the port, migrate the database, create the first admin when\n"
                    "there is none, and serve. Configured by environment variables only.",
        epilog="settings (environment variables, with their defaults):\n" + settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` (not yet listening: uvicorn does that), or a
    `CommandError` (exit 2) saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise CommandError(f"CONNECTOR_HOST: cannot listen on {host!r}: {_reason(exc)}",
                           2) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port} (CONNECTOR_HOST, CONNECTOR_PORT): "
                           f"{_reason(exc)}", 2) from None
    sock.set_inheritable(True)
    return sock


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from connector.app import create_app
    from connector.logs import setup_logging
    from connector.realtime.hub import CATCH_UP_SECONDS
    from connector.web.server import BoundServer, raise_open_files_limit

    setup_logging(settings)
    raise_open_files_limit()
    sock = listen(settings.host, settings.port)
    try:
        generated = run_db(settings, lambda c: users.ensure_admin(
            c, settings.admin_username, settings.admin_password))
    except BaseException:
        sock.close()
        raise
    if generated is not None:
        # Printed once, to the terminal only: it is not stored anywhere in clear.
        print(f"\n  First start: created admin user {settings.admin_username!r} with the "
              f"one-time password:\n\n      {generated}\n\n  Sign in with it: you will be "
              "asked for a new password before anything else.\n",
              file=sys.stderr, flush=True)
    if not settings.is_sqlite and settings.bus_url.startswith("memory:"):
        log.warning(
            "CONNECTOR_BUS_URL is memory:// on PostgreSQL: with several instances, live "
            "updates reach consoles on the other instances only through the database poll "
            "(every %g s); set CONNECTOR_BUS_URL=redis://host:6379/0", CATCH_UP_SECONDS)
    config = uvicorn.Config(create_app(settings), **server_options(settings))
    BoundServer(config).run(sockets=[sock])
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
    migrate(settings)
    print("database schema is up to date")
    return 0
