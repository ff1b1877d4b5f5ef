"""Who may read the metrics: `/metrics` and its token, the loopback port; the settings'
checks. And the live stream's figures, over a real socket on a real server."""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.settings import ConfigError, Settings, load_settings
from tests.conftest import free_port, make_settings
from tests.helpers import running, wait_until
from tests.metrics.scrape import Samples, parse, value
from tests.realtime_helpers import live_server, world_with

pytestmark = pytest.mark.anyio

TOKEN = "0123456789abcdef0123456789abcdef"


async def test_metrics_path_is_404_without_a_token_setting(settings: Settings) -> None:
    async with running(settings) as (_, client):
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404
        assert "connector_" not in r.text


async def test_metrics_path_wants_the_bearer_token(tmp_path: Path, settings: Settings) -> None:
    with_token = make_settings(tmp_path, metrics_token=TOKEN)
    async with running(with_token) as (_, client):
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}):
            r = await client.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert "connector_" not in r.text
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        assert "connector_webhook_events_total" in r.text
        assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


@pytest.mark.parametrize(("overrides", "setting"), [
    ({"metrics_token": "short"}, "CONNECTOR_METRICS_TOKEN"),
    ({"metrics_token": "has a space in it 0123456789"}, "CONNECTOR_METRICS_TOKEN"),
    ({"metrics_port": 0}, "CONNECTOR_METRICS_PORT"),
    ({"metrics_port": 70000}, "CONNECTOR_METRICS_PORT"),
    ({"metrics_port": 8000, "port": 8000}, "CONNECTOR_METRICS_PORT"),
])
def test_bad_metrics_settings_fail_naming_the_setting(overrides: dict[str, Any],
                                                      setting: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_settings(**overrides)


async def test_metrics_port_serves_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    with live_server(tmp_path, metrics_port=port) as server:
        assert server.app.state.metrics_listener.address == ("127.0.0.1", port)
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
            assert "connector_dead_letters" in r.text
            assert (await http.get(f"http://127.0.0.1:{port}/other")).status_code == 404
            # The main port still hides /metrics: no token is set.
            assert (await http.get(f"{server.url}/metrics")).status_code == 404
        # Not on any other address of this host.
        for address in _other_addresses():
            with pytest.raises(OSError), socket.create_connection((address, port), 2):
                pass


def _other_addresses() -> list[str]:
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127."))


async def test_live_stream_connections_messages_and_bytes(tmp_path: Path) -> None:
    port = free_port()
    async with world_with(tmp_path, metrics_port=port) as world, httpx.AsyncClient() as http:
        async def scrape() -> Samples:
            r = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert r.status_code == 200
            return parse(r.text)

        def until(check: Callable[[Samples], bool], what: str) -> Awaitable[Samples]:
            async def once() -> Samples | None:
                samples = await scrape()
                return samples if check(samples) else None
            return wait_until(once, what=what)

        before = await scrape()
        assert value(before, "connector_live_connections") == 0
        alice = await world.person("alice")
        stream = await world.open(alice)
        during = await until(lambda s: value(s, "connector_live_messages_total") >= 1,
                             "the hello counted")
        assert value(during, "connector_live_connections") == 1
        # At least the hello frame's bytes (its JSON, compact, as parsed back).
        assert value(during, "connector_live_sent_bytes_total") >= len(
            json.dumps(stream.hello, separators=(",", ":"), ensure_ascii=False).encode())
        await stream.drop()
        after = await until(lambda s: value(s, "connector_live_connections") == 0,
                            "the socket gone")
        assert value(after, "connector_live_messages_total") >= 1
