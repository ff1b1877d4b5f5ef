"""Presence kept in the database (`connector.realtime.presence`): rows of an instance
that died are reaped by a live one, which announces its users offline; rows of a
stalled instance that were reaped are written again. (Several live instances:
tests/cluster/test_three_instances.py.)"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from connector.realtime import presence
from connector.storage.db import utcnow
from connector.storage.models import ConsolePresence
from tests.helpers import execute, rows, wait_until
from tests.realtime_helpers import World, on_server, world_with

pytestmark = pytest.mark.anyio

_p = ConsolePresence.__table__


@pytest.fixture
def quick_presence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence, "REFRESH_SECONDS", 0.1)


async def _rows(world: World) -> list[dict[str, object]]:
    return await on_server(world.live, rows(world.live.app, ConsolePresence))


async def test_a_dead_instances_users_are_announced_offline_by_a_live_one(
        tmp_path, quick_presence):
    async with world_with(tmp_path) as world:
        sam, alice = await world.person("sam"), await world.person("alice")
        watcher = await world.open(sam)
        await on_server(world.live, execute(world.live.app, sa.insert(_p).values(
            instance_id="dead" * 8, user_id=alice.user_id,
            seen_at=utcnow() - presence.LIVE_FOR - dt.timedelta(seconds=1))))
        frame = await watcher.until(lambda f: f["type"] == "presence" and f["user"] == "alice")
        assert frame["online"] is False
        assert [r["user_id"] for r in await _rows(world)] == [sam.user_id]


async def test_a_user_connected_elsewhere_stays_online_when_a_dead_instance_is_reaped(
        tmp_path, quick_presence):
    async with world_with(tmp_path) as world:
        sam, alice = await world.person("sam"), await world.person("alice")
        watcher = await world.open(sam)
        await world.open(alice)
        await watcher.until(lambda f: f["type"] == "presence" and f["user"] == "alice")
        await on_server(world.live, execute(world.live.app, sa.insert(_p).values(
            instance_id="dead" * 8, user_id=alice.user_id,
            seen_at=utcnow() - presence.LIVE_FOR - dt.timedelta(seconds=1))))

        async def reaped() -> bool:
            return not any(r["instance_id"] == "dead" * 8 for r in await _rows(world))

        await wait_until(reaped, what="the dead instance's row reaped")
        await world.turn("u-1", "marker", need_help=True)
        await watcher.until(lambda f: f["type"] == "ticket.created")
        assert not any(f["type"] == "presence" and f["user"] == "alice" and not f["online"]
                       for f in watcher.events())


async def test_rows_reaped_while_this_instance_stalled_are_written_again(
        tmp_path, quick_presence, caplog):
    async with world_with(tmp_path) as world:
        sam, alice = await world.person("sam"), await world.person("alice")
        watcher = await world.open(sam)
        await world.open(alice)
        await watcher.until(lambda f: f["type"] == "presence" and f["user"] == "alice")
        # As another instance would after this one did not refresh for LIVE_FOR.
        await on_server(world.live, execute(world.live.app, sa.delete(_p).where(
            _p.c.user_id == alice.user_id)))

        async def back() -> bool:
            return any(r["user_id"] == alice.user_id for r in await _rows(world))

        await wait_until(back, what="alice's row written again")
        frame = await watcher.until(lambda f: f["type"] == "presence" and f["user"] == "alice")
        assert frame["online"] is True
        assert any("writing them again" in r.getMessage() for r in caplog.records)
