"""PostgreSQL going away under a running instance (a TCP forwarder between them is
cut, then mended): every request gets 503 with Retry-After, a console's socket is
closed with 1013, no traceback is logged, and all works again once it is back."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from connector.accounts import integrations
from connector.storage import outage
from tests import builders
from tests.fakes import FakeChannel
from tests.helpers import Forwarder, postgres_database, wait_until
from tests.realtime_helpers import World, live_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def forwarded_database() -> Iterator[tuple[str, Forwarder]]:
    """A fresh PostgreSQL database reached through a `Forwarder`: its URL, the forwarder."""
    with postgres_database() as url:
        forwarder = Forwarder(("127.0.0.1", 5432)).mend()
        try:
            yield url.replace("127.0.0.1:5432", f"127.0.0.1:{forwarder.port}"), forwarder
        finally:
            forwarder.cut()


@contextlib.asynccontextmanager
async def world_on(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    with live_server(tmp_path, database_url=database_url) as live:
        channel = FakeChannel().start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                yield await World(live, channel, stack).start()
        finally:
            channel.stop()


async def test_the_database_down_is_503_with_retry_after_and_no_traceback(
        tmp_path, forwarded_database, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch):
    database_url, forwarder = forwarded_database
    # The outage's warning lines are rate-limited process-wide: none from an earlier test.
    monkeypatch.setitem(outage._state, "logged_at", float("-inf"))
    async with world_on(tmp_path, database_url) as world:
        alice = await world.person("alice")
        assert (await world.turn("u-1", "before")).get("event_id")
        # Cleared before the cut: the instance's background loops may log the outage's
        # one line before this test's first request does.
        caplog.clear()
        forwarder.cut()
        # Past the integration cache: the key check itself needs the database.
        await anyio.sleep(integrations.CACHE_SECONDS)
        for _ in range(3):
            r = await world.hooks.post(world.bot.smartly_path, json={"event": "x"})
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "unavailable"
            assert r.headers["retry-after"] == "5"
        r = await alice.http.get("/api/session")
        assert (r.status_code, r.json()["error"]) == (503, "unavailable"), r.text
        r = await alice.http.get("/api/tickets")
        assert r.status_code == 503, r.text
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{world.live.url}/readyz")).status_code == 503
        ws = await world.connect(alice)
        with pytest.raises(Exception) as closed:
            await ws.recv()
        assert getattr(closed.value, "rcvd", None) is not None
        assert closed.value.rcvd.code == 1013  # type: ignore[attr-defined]

        forwarder.mend()

        async def works() -> bool:
            r = await world.hooks.post(world.bot.smartly_path,
                                       json=builders.turn("u-1", "after", answer=None))
            return r.status_code == 200

        await wait_until(works, within=20, what="webhooks stored again")
        r = await alice.http.get("/api/session")
        assert r.status_code == 200, r.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    warnings = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("database unavailable")]
    assert 1 <= len(warnings) <= 3, warnings
    assert not any("Traceback" in (r.exc_text or "") or r.exc_info for r in caplog.records)

