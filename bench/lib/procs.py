"""Processes and ports: the servers a benchmark starts, and the `connector` CLI."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Server:
    """A server process on a loopback port, its output in `log`."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    """Until `GET /healthz` answers 200; exits with the server's log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited with {server.proc.returncode}:\n"
                             + server.log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(server.url("/healthz"), timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{server.name} not ready after {timeout} s")


def stop(server: Server) -> None:
    """SIGINT (a graceful shutdown), then SIGKILL after 20 s."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def cli(env: dict[str, str], *args: str) -> str:
    """Run `connector ARGS` from the checkout first on env's PYTHONPATH; its stdout."""
    out = subprocess.run([sys.executable, "-m", "connector.cli", *args], env=env,
                         cwd=env["PYTHONPATH"].split(os.pathsep)[0],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"connector {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def raise_nofile(want: int = 65536) -> int:
    """Raise this process's soft fd limit as far as the hard limit allows; returns it.

    Children started afterwards inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
