"""The client address behind proxies: X-Forwarded-For counts only from trusted proxies.

The sign-in throttle and the access log use the same address. The HTTP tests run
the app under a real uvicorn with `serve`'s own options (`cli.server_options`):
uvicorn itself would believe X-Forwarded-For from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from connector.app import create_app
from connector.cli import server_options
from connector.settings import Settings
from connector.web.proxies import client_address, parse_networks
from tests.conftest import PASSWORD, add_user, free_port, fresh_database, make_settings

pytestmark = pytest.mark.anyio


@contextmanager
def served(settings: Settings) -> Iterator[tuple[Any, str]]:
    """(app, base URL): the real app under uvicorn, as `connector serve` runs it."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, **{**server_options(settings), "lifespan": "on"}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        yield app, f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def serve(tmp_path: Path, migrated_db: Path) -> Any:
    def make(**overrides: Any) -> Any:
        fresh_database(migrated_db, tmp_path)
        port = free_port()
        return served(make_settings(tmp_path, port=port, public_url=f"http://127.0.0.1:{port}",
                                    login_max_failures=1, **overrides))
    return make


async def sign_in(c: httpx.AsyncClient, username: str, password: str = PASSWORD,
                  forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    r = await c.post("/api/login", json={"username": username, "password": password},
                     headers=headers)
    return r.status_code


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "connector.access"]


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8, 192.168.0.1"])
async def test_a_locked_out_address_stays_locked_whatever_x_forwarded_for_says(
        serve, caplog, trusted):
    # The peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is the client's word.
    caplog.set_level(logging.INFO, logger="connector.access")
    with serve(trusted_proxies=trusted) as (_app, url):
        async with httpx.AsyncClient(base_url=url) as c:
            # The address may fail four times the username limit (1) before it is locked.
            for n in range(4):
                assert await sign_in(c, f"user{n}", "guess") == 401
            assert await sign_in(c, "user4", "guess") == 429
            codes = [await sign_in(c, f"other{n}", "guess", forwarded_for=f"203.0.113.{n}")
                     for n in range(10)]
            assert codes == [429] * 10
            assert await sign_in(c, "other", "guess",
                                 forwarded_for="198.51.100.1, 198.51.100.2") == 429
    lines = access_lines(caplog)
    assert len(lines) == 4 + 1 + 10 + 1
    assert all(line.startswith("127.0.0.1 POST /api/login ") for line in lines), lines


async def test_x_forwarded_for_from_a_trusted_proxy_is_the_client_address(serve, caplog):
    caplog.set_level(logging.INFO, logger="connector.access")
    with serve(trusted_proxies="127.0.0.1, 10.0.0.0/8") as (app, url):
        await _run_on(app, add_user(app, "alice"))
        async with httpx.AsyncClient(base_url=url) as c:
            for n in range(4):
                assert await sign_in(c, f"user{n}", "guess", forwarded_for="203.0.113.7") == 401
            assert await sign_in(c, "alice", forwarded_for="203.0.113.7") == 429
            # What the client wrote to the left of its own address changes nothing ...
            assert await sign_in(c, "alice", forwarded_for="198.51.100.20, 203.0.113.7") == 429
            # ... and trusted proxies in the chain are skipped, from the right.
            assert await sign_in(c, "alice",
                                 forwarded_for="203.0.113.7, 10.1.2.3, 127.0.0.1") == 429
            # Another client behind the same proxy is not locked out.
            assert await sign_in(c, "alice", forwarded_for="198.51.100.20") == 200
            # Without the header the proxy is the client (its own requests, health checks).
            assert await sign_in(c, "alice") == 200
    lines = access_lines(caplog)
    assert [line.split(" ")[0] for line in lines] == ["203.0.113.7"] * 7 + [
        "198.51.100.20", "127.0.0.1"], lines
    assert lines[4].startswith("203.0.113.7 POST /api/login 429 ")


async def _run_on(app: Any, coro: Any) -> Any:
    """Run a coroutine on the served app's loop (its store lives there)."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, app.state.loop))


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {"type": "http", "client": (peer, 50000) if peer else None,
            "headers": [(b"x-forwarded-for", v.encode("latin-1")) for v in forwarded]}


@pytest.mark.parametrize(("trusted", "request_scope", "expected"), [
    ("", scope("127.0.0.1", "203.0.113.7"), "127.0.0.1"),
    ("10.0.0.0/8", scope("192.0.2.1", "203.0.113.7"), "192.0.2.1"),
    ("10.0.0.0/8", scope("10.0.0.2", "203.0.113.7"), "203.0.113.7"),
    ("10.0.0.0/8", scope("10.0.0.2", "1.1.1.1, 203.0.113.7"), "203.0.113.7"),
    ("10.0.0.0/8", scope("10.0.0.2", "1.1.1.1", "203.0.113.7, 10.9.9.9"), "203.0.113.7"),
    ("10.0.0.0/8", scope("10.0.0.2"), "10.0.0.2"),
    ("10.0.0.0/8", scope("10.0.0.2", "10.0.0.3, 10.0.0.4"), "10.0.0.3"),
    # Not an address: the walk ends at the trusted proxy that passed it on.
    ("10.0.0.0/8", scope("10.0.0.2", "203.0.113.7, evil\r\nline, 10.0.0.4"), "10.0.0.4"),
    ("10.0.0.0/8", scope("10.0.0.2", "unknown"), "10.0.0.2"),
    ("10.0.0.0/8", scope("::ffff:10.0.0.2", "203.0.113.7"), "203.0.113.7"),
    ("fd00::/8", scope("fd00::1", "2001:db8::7"), "2001:db8::7"),
    ("10.0.0.0/8", scope(None, "203.0.113.7"), "-"),
])
def test_the_client_address_walk(trusted, request_scope, expected):
    assert client_address(request_scope, parse_networks(trusted)) == expected
