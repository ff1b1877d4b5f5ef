"""The Redis event bus: two instances on one PostgreSQL database sharing one real Redis.

The test starts `redis-server` itself on a free loopback port, and stops and
restarts it. A console on instance B must see what is posted to instance A:
live through Redis (checked with B's stored-stream poll switched off), and
through the stored stream while Redis is down; never a gap or a duplicate.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.realtime.bus import RedisBus, create_bus
from connector.realtime.stream import Event
from connector.settings import ConfigError, load_settings
from connector.storage.migrate import upgrade
from tests.conftest import LiveServer, free_port, make_settings
from tests.fakes import FakeChannel
from tests.helpers import REDIS_SERVER, Redis, postgres_database, wait_until
from tests.realtime_helpers import World, on_server
from tests.test_process import Deployment

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LOST = "event bus: Redis at"
LOST_WORD, BACK_WORD = "lost (", "is back"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    if not REDIS_SERVER.exists():
        pytest.skip("redis-server is missing: run scripts/install-test-deps.sh")
    server = Redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@contextlib.asynccontextmanager
async def two_instances(tmp_path: Path, database_url: str, bus_url: str,
                        ) -> AsyncIterator[tuple[World, World]]:
    """Instances A and B on one database and one bus: A with a bot, B for consoles."""
    servers: list[LiveServer] = []
    channel = FakeChannel().start()
    try:
        for name in "ab":
            port = free_port()
            where = tmp_path / name
            where.mkdir()
            settings = make_settings(where, database_url=database_url, bus_url=bus_url,
                                     port=port, public_url=f"http://127.0.0.1:{port}")
            if not servers:
                upgrade(settings)
            servers.append(LiveServer(settings).start())
        async with contextlib.AsyncExitStack() as stack:
            a = await World(servers[0], channel, stack).start()
            yield a, World(servers[1], channel, stack)
    finally:
        for server in servers:
            server.stop()
        channel.stop()


async def ready(world: World) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{world.live.url}/readyz")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def bus_is(state: str, *worlds: World) -> None:
    for world in worlds:
        async def reports(w: World = world) -> bool:
            return (await ready(w))["bus"] == state

        await wait_until(reports, within=30, what=f"bus {state}")


async def without_poll(world: World) -> None:
    """Switch off the hub's reading of the stored stream: only the bus brings events."""
    async def noop() -> None:
        pass

    async def switch() -> None:
        world.live.app.state.hub._catch_up = noop

    await on_server(world.live, switch())


def bus_lines(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith(LOST) and word in r.getMessage()]


async def post_and_settle(a: World, b: World, who: Any, s: Any, users: list[str]) -> None:
    for user in users:
        await a.escalate(user)
    await b.settle(who, s, await a.last_cursor())


async def test_a_console_on_b_sees_events_posted_to_a_live_through_redis(
        tmp_path, redis, postgres_url):
    redis.start()
    async with two_instances(tmp_path, postgres_url, redis.url) as (a, b):
        await bus_is("ok", a, b)
        sam = await b.person("sam")
        s = await b.open(sam)
        await without_poll(b)
        await post_and_settle(a, b, sam, s, [f"live-{n}" for n in range(8)])
        assert len(s.events()) >= 8


async def test_redis_stopped_mid_stream_then_restarted(tmp_path, redis, postgres_url, caplog):
    caplog.set_level(logging.INFO, logger="connector.realtime")
    redis.start()
    async with two_instances(tmp_path, postgres_url, redis.url) as (a, b):
        await bus_is("ok", a, b)
        sam = await b.person("sam")
        s = await b.open(sam)
        await post_and_settle(a, b, sam, s, ["before-1", "before-2"])

        redis.stop()
        await bus_is("down", a, b)
        # Through the stored stream, many events, and still one warning per instance.
        await post_and_settle(a, b, sam, s, [f"down-{n}" for n in range(10)])
        assert len(bus_lines(caplog, LOST_WORD)) == 2
        assert bus_lines(caplog, BACK_WORD) == []

        redis.start()
        await bus_is("ok", a, b)
        assert len(bus_lines(caplog, BACK_WORD)) == 2
        await without_poll(b)
        await post_and_settle(a, b, sam, s, [f"after-{n}" for n in range(5)])
        assert len(bus_lines(caplog, LOST_WORD)) == 2


async def test_instances_started_with_redis_down_serve_and_go_live_when_it_comes_up(
        tmp_path, redis, postgres_url, caplog):
    caplog.set_level(logging.INFO, logger="connector.realtime")
    async with two_instances(tmp_path, postgres_url, redis.url) as (a, b):
        await bus_is("down", a, b)
        assert len(bus_lines(caplog, LOST_WORD)) == 2
        sam = await b.person("sam")
        s = await b.open(sam)
        await post_and_settle(a, b, sam, s, ["early-1", "early-2", "early-3"])

        redis.start()
        await bus_is("ok", a, b)
        assert len(bus_lines(caplog, BACK_WORD)) == 2
        await without_poll(b)
        await post_and_settle(a, b, sam, s, ["late-1", "late-2", "late-3"])


def test_settings_accept_redis_urls_and_refuse_garbage_with_one_line():
    for url in ("redis://127.0.0.1:6379/0", "redis://:secret@redis.internal:6380/2",
                "rediss://redis.example.com/1", "redis://localhost", "memory://"):
        assert load_settings(bus_url=url).bus_url == url
    for url, says in [("kafka://broker", "must start with one of memory://, redis://"),
                      ("redis://", "needs a host"),
                      ("redis://host:port/0", "bad Redis URL"),
                      ("redis://host:6379/zero", "ends with the database number"),
                      ("redis://host:6379/0?ssl=1", "ends with the database number")]:
        with pytest.raises(ConfigError) as caught:
            load_settings(bus_url=url)
        message = str(caught.value)
        assert message.startswith("CONNECTOR_BUS_URL: ") and says in message, message
        assert "\n" not in message


def test_redis_messages_carry_rendered_frames_and_skip_their_sender():
    a = create_bus("redis://127.0.0.1:6379/3")
    b = create_bus("redis://127.0.0.1:6379/3")
    assert isinstance(a, RedisBus) and isinstance(b, RedisBus)
    assert a.channel == b.channel == "connector:stream:3"
    events = [Event("presence", {"user": "sam", "online": True}, public=True, cursor=7),
              Event("message.created", {"ticket": 4, "message": {"text": "a\nb \"c\""}},
                    ticket_id=4, user_ids=[2, 5], cursor=8)]
    message = a._encode(events)
    assert a._decode(message) == []
    got = b._decode(message)
    assert [(e.cursor, e.type, e.ticket_id, e.public, e.user_ids, e.text()) for e in got] == [
        (e.cursor, e.type, e.ticket_id, e.public, e.user_ids, e.text()) for e in events]
    assert [e.frame() for e in got] == [e.frame() for e in events]
    assert len(message) < sum(len(e.text()) for e in events) + 100


def test_a_malformed_message_is_ignored(caplog):
    caplog.set_level(logging.WARNING, logger="connector.realtime")
    bus = create_bus("redis://127.0.0.1:6379/0")
    assert isinstance(bus, RedisBus)
    for data in (b"x", b"other\n[[1]]\n{}", b"other\nnot json\n{}", b"\xff"):
        assert bus._decode(data) == []
    assert len(caplog.records) == 4


def test_serve_warns_once_about_a_memory_bus_on_postgresql_and_not_on_sqlite(
        tmp_path, postgres_url):
    lag = "live updates reach consoles on the other instances only"
    for where, extra in (("pg", {"CONNECTOR_DATABASE_URL": postgres_url}), ("sqlite", {})):
        (tmp_path / where).mkdir()
        d = Deployment(tmp_path / where, CONNECTOR_ADMIN_PASSWORD="admin password 1", **extra)
        try:
            text = d.serve().read_text()
            d.stop()
        finally:
            d.cleanup()
        assert text.count(lag) == (1 if where == "pg" else 0), text
