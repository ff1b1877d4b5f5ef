"""`Stack`: the connector under test, on a fresh database, and the processes of one run."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import Server, cli, free_port, stop, wait_ready

#: The checkout these benchmarks belong to: the default `--source`.
ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Stack:
    """A temporary database, one integration, and the processes of one benchmark run.

    Every process gets `env`: the `connector` package of `source` first on
    PYTHONPATH, a SQLite database in the temporary directory, log level
    warning, a random admin password, and this stack's port.
    """

    source: Path = ROOT
    channel_url: str = "http://127.0.0.1:9/bench"
    extra_env: dict[str, str] = field(default_factory=dict)
    keep: bool = False
    prefix: str = "bench-"  # of the temporary directory's name
    tmp: Path = field(init=False)
    port: int = field(init=False)
    env: dict[str, str] = field(init=False)
    servers: list[Server] = field(default_factory=list)
    connector: Server | None = None
    integration: dict[str, Any] = field(default_factory=dict)
    hook_path: str = ""

    def __post_init__(self) -> None:
        self.source = self.source.resolve()
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(self.source),
                                                        os.environ.get("PYTHONPATH")])),
            "CONNECTOR_DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp / 'connector.db'}",
            "CONNECTOR_LOG_LEVEL": "warning",
            "CONNECTOR_ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "CONNECTOR_HOST": "127.0.0.1", "CONNECTOR_PORT": str(self.port),
            "CONNECTOR_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            # The fake channel listens on loopback, which outbound calls refuse by default.
            "CONNECTOR_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            **self.extra_env,
        }

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.tmp / "connector.db"

    def spawn(self, name: str, cmd: list[str], port: int,
              env: dict[str, str] | None = None) -> Server:
        """Start `cmd` in its own session, its output in TMP/NAME.log; stopped on close.

        Its environment is `env`, `self.env` by default.
        """
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen(cmd, env=self.env if env is None else env, cwd=self.source,
                                stdout=log.open("wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        server = Server(name, proc, port, log)
        self.servers.append(server)
        return server

    def prepare(self) -> None:
        """`connector migrate` and one integration (what `start_connector` does first)."""
        cli(self.env, "migrate")
        self.integration = json.loads(cli(self.env, "integration", "add", "--name", "bench",
                                          "--channel-url", self.channel_url, "--json"))
        self.hook_path = self.integration["smartly_webhook_url"].split(f":{self.port}", 1)[1]

    def start_connector(self) -> Server:
        """`prepare` (unless done), then `connector serve` until it is ready."""
        if not self.integration:
            self.prepare()
        self.connector = self.spawn("connector", [sys.executable, "-m", "connector.cli",
                                                  "serve"], self.port)
        wait_ready(self.connector)
        return self.connector

    def start_instance(self, name: str) -> Server:
        """One more `connector serve` (after `start_connector`) on the same database and bus,
        on a port of its own, which is also its public URL's (so its consoles' Origin)."""
        port = free_port()
        env = {**self.env, "CONNECTOR_PORT": str(port),
               "CONNECTOR_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        server = self.spawn(name, [sys.executable, "-m", "connector.cli", "serve"], port, env)
        wait_ready(server)
        return server

    def check_alive(self) -> None:
        for s in self.servers:
            if s.proc.poll() is not None:
                raise SystemExit(f"{s.name} died ({s.proc.returncode}):\n"
                                 + s.log.read_text(errors="replace")[-3000:])

    def stop(self, server: Server) -> None:
        """Stop one of this stack's servers before the others."""
        self.servers.remove(server)
        stop(server)

    def close(self) -> None:
        for s in reversed(self.servers):
            stop(s)
        if self.keep:
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def stack(**kwargs: Any) -> Iterator[Stack]:
    s = Stack(**kwargs)
    try:
        yield s
    finally:
        s.close()
