"""Three real `connector serve` processes behind one public URL, on one PostgreSQL
database and one Redis (tests/cluster/conftest.py): what one instance does, every
other one sees and enforces; Redis or an instance dying loses nothing.

The module's tests share one cluster and run in order; the last one kills an
instance with -9 and starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import anyio
import httpx
import pytest

from tests.cluster.conftest import ADMIN_PASSWORD, LEASE_SECONDS, Cluster, Person, query
from tests.conftest import PASSWORD
from tests.fakes import Reply
from tests.helpers import wait_until
from tests.realtime_helpers import Stream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def last_cursor(cluster: Cluster) -> int:
    return (await query(cluster, "SELECT max(id) FROM stream_event"))[0][0] or 0


def texts_of(s: Stream) -> list[str]:
    return [f["message"]["text"] for f in s.events() if f["type"] == "message.created"]


async def test_consoles_on_every_instance_see_every_event_in_order_redis_stopped_or_not(
        cluster: Cluster):
    supervisors = [cluster.sign_in("sam"), cluster.sign_in("sue")]
    sent: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        consoles = [await stack.enter_async_context(cluster.console(who, instance))
                    for instance in cluster.instances for who in supervisors]
        async with httpx.AsyncClient(timeout=30) as http:
            async def burst(phase: str, count: int) -> None:
                async def one(n: int) -> None:
                    text = f"{phase} {n}"
                    instance = cluster.instances[n % len(cluster.instances)]
                    r = await cluster.turn(http, instance, f"stream-user-{n % 7}", text)
                    assert r.status_code == 200, r.text
                    sent.append(text)

                await asyncio.gather(*(one(n) for n in range(count)))

            for n in range(7):  # each end user hands over: their turns are shown from now on
                r = await cluster.turn(http, cluster.instances[n % 3], f"stream-user-{n}",
                                       "a human please", need_help=True)
                assert r.status_code == 200 and r.json()["ticket_opened"], r.text
            await burst("bus up", 30)
            cluster.redis.stop()
            await burst("bus down", 30)  # other instances' events come from the stored stream
            cluster.redis.start()
            await burst("bus back", 30)
        upto = await last_cursor(cluster)
        for s in consoles:
            await s.reach(upto, within=30)
        for s in consoles:
            cursors = [f["cursor"] for f in s.events() if f["cursor"] <= upto]
            # A supervisor sees every stored event: one each, in cursor order, no gap.
            assert cursors == list(range(s.hello["cursor"] + 1, upto + 1))
            seen = [t for t in texts_of(s) if t in sent]
            assert sorted(seen) == sorted(sent), (len(seen), len(sent))
    assert "Traceback" not in cluster.logs()


async def test_presence_and_typing_reach_every_instance(cluster: Cluster):
    a, b, c = cluster.instances
    sam, alice = cluster.sign_in("sam"), cluster.sign_in("alice")

    def is_alice(online: bool) -> Any:
        return lambda f: (f["type"] == "presence" and f["user"] == "alice"
                          and f["online"] is online)

    (queued,) = (await query(cluster, "SELECT min(id) FROM ticket WHERE state = 'queued'"))[0]
    async with cluster.console(sam, c) as watcher:
        async with cluster.console(alice, a) as console:
            await watcher.until(is_alice(True), within=10)
            # Typing on a, seen on c.
            await console.ws.send(json.dumps({"type": "typing", "ticket": queued}))
            typing = await watcher.until(lambda f: f["type"] == "typing", within=10)
            assert (typing["ticket"], typing["user"]) == (queued, "alice")
            async with cluster.console(alice, b):
                await _rows_of(cluster, alice, 2)
            await _rows_of(cluster, alice, 1)
            # Still connected on a: a marker turn arrives with no offline frame before it.
            async with httpx.AsyncClient(timeout=20) as http:
                r = await cluster.turn(http, b, "stream-user-0", "marker")  # an open ticket
                assert r.status_code == 200, r.text
            await watcher.until(lambda f: f["type"] == "message.created"
                                and f["message"]["text"] == "marker")
            assert not any(is_alice(False)(f) for f in watcher.events())
            assert sum(is_alice(True)(f) for f in watcher.events()) == 1
        await watcher.until(is_alice(False), within=10)
    await _rows_of(cluster, alice, 0)


async def _rows_of(cluster: Cluster, who: Person, count: int) -> None:
    """Wait until `who` has a presence row on `count` instances."""
    async def rows_match() -> bool:
        return len(await query(cluster, "SELECT instance_id FROM console_presence "
                                        "WHERE user_id = :u", u=who.user_id)) == count

    await wait_until(rows_match, within=10, what=f"{count} presence rows of {who.name}")


async def test_a_key_rotated_without_grace_is_refused_by_every_instance_within_a_second(
        cluster: Cluster):
    old = cluster.bot["key"]
    admin = cluster.sign_in("admin", ADMIN_PASSWORD)
    async with httpx.AsyncClient(timeout=20) as http:
        for instance in cluster.instances:  # each instance has the integration cached
            r = await cluster.turn(http, instance, "rotation-user", "before", key=old)
            assert r.status_code == 200, r.text
        r = await http.post(f"{cluster.instances[0].url}/api/integrations/"
                            f"{cluster.bot['id']}/rotate-key", headers=admin.headers(),
                            json={"grace_seconds": 0})
        assert r.status_code == 200, r.text
        rotated = time.monotonic()
        new = r.json()["key"]
        cluster.bot["key"] = new
        await anyio.sleep(rotated + 1.0 - time.monotonic())
        for instance in cluster.instances:
            r = await cluster.turn(http, instance, "rotation-user", "old key", key=old)
            assert r.status_code == 401, (instance.name, r.status_code, r.text)
        for instance in cluster.instances:
            r = await cluster.turn(http, instance, "rotation-user", "new key", key=new)
            assert r.status_code == 200, (instance.name, r.text)


@pytest.mark.parametrize("how", ["sign out", "role changed", "disabled"])
async def test_revoking_a_session_closes_its_consoles_on_every_instance_within_2s(
        cluster: Cluster, how: str):
    admin = cluster.sign_in("admin", ADMIN_PASSWORD)
    name = f"revoked-{how.replace(' ', '-')}"
    async with httpx.AsyncClient(timeout=20) as http:
        r = await http.post(f"{cluster.instances[0].url}/api/users", headers=admin.headers(),
                            json={"username": name, "password": PASSWORD, "role": "agent"})
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
        who = cluster.sign_in(name, on=1)
        async with contextlib.AsyncExitStack() as stack:
            consoles = [await stack.enter_async_context(cluster.console(who, instance))
                        for instance in cluster.instances]
            a = cluster.instances[0].url
            if how == "sign out":
                r = await http.post(f"{a}/api/logout", headers=who.headers())
                expected = 4401
            else:
                change = {"role": "supervisor"} if how == "role changed" else {"disabled": True}
                r = await http.patch(f"{a}/api/users/{user_id}", headers=admin.headers(),
                                     json=change)
                expected = 4003 if how == "role changed" else 4401
            assert r.status_code == 200, r.text
            done = time.monotonic()
            codes = await asyncio.gather(*(s.close_code(within=2.0) for s in consoles))
            assert codes == [expected] * 3, codes
            assert time.monotonic() - done <= 2.0


async def test_sign_in_failures_count_across_instances(cluster: Cluster):
    admin = cluster.sign_in("admin", ADMIN_PASSWORD)
    async with httpx.AsyncClient(timeout=20, headers={"Origin": "http://desk.test"}) as http:
        r = await http.post(f"{cluster.instances[0].url}/api/users", headers=admin.headers(),
                            json={"username": "guessed", "password": PASSWORD, "role": "agent"})
        assert r.status_code == 201, r.text
        for instance in cluster.instances:  # CONNECTOR_LOGIN_MAX_FAILURES=3: one on each
            r = await http.post(f"{instance.url}/api/login",
                                json={"username": "guessed", "password": "wrong password 1"})
            assert r.status_code == 401, r.text
        for instance in cluster.instances:
            r = await http.post(f"{instance.url}/api/login",
                                json={"username": "guessed", "password": PASSWORD})
            assert r.status_code == 429, (instance.name, r.status_code, r.text)
            assert int(r.headers["retry-after"]) > 0


async def _claimed(cluster: Cluster, http: httpx.AsyncClient, agent: Person,
                   end_user: str) -> int:
    r = await cluster.turn(http, cluster.instances[0], end_user, "a human please",
                           need_help=True)
    assert r.status_code == 200, r.text
    ticket = r.json()["ticket_id"]
    r = await http.post(f"{cluster.instances[1].url}/api/tickets/{ticket}/claim",
                        headers=agent.headers())
    assert r.status_code == 200, r.text
    return ticket


async def test_replies_through_any_instance_reach_the_channel_once_each_in_order(
        cluster: Cluster):
    alice = cluster.sign_in("alice")
    cluster.channel.default = Reply(200, delay=0.05)  # deliveries queue up behind each other
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            ticket = await _claimed(cluster, http, alice, "order-user")
            before = len(cluster.channel.delivered)
            expected = []
            for n in range(9):  # one after the other, each through the next instance
                instance = cluster.instances[n % 3]
                r = await http.post(f"{instance.url}/api/tickets/{ticket}/messages",
                                    headers=alice.headers(), json={"text": f"reply {n}"})
                assert r.status_code in (200, 201), r.text
                expected.append(f"reply {n}")
            # And at the same time through all three: the transcript decides the order.
            posts = await asyncio.gather(*(http.post(
                f"{cluster.instances[n % 3].url}/api/tickets/{ticket}/messages",
                headers=alice.headers(), json={"text": f"together {n}"}) for n in range(9)))
            assert all(r.status_code in (200, 201) for r in posts), [r.text for r in posts]
            r = await http.get(f"{cluster.instances[2].url}/api/tickets/{ticket}",
                               headers=alice.headers())
            transcript = [m["text"] for m in r.json()["messages"] if m["kind"] == "agent"]
            assert transcript[:9] == expected
            delivered = await anyio.to_thread.run_sync(
                cluster.channel.wait_delivered, before + 18, 30.0)
        texts = [d.body for d in delivered[before:]]
        assert [_text(b) for b in texts] == transcript
    finally:
        cluster.channel.default = Reply(200)


def _text(body: dict[str, Any]) -> str:
    return body["message"]["text"]  # type: ignore[no-any-return]


async def test_kill_9_of_the_instance_sending_a_reply_hands_it_to_another(cluster: Cluster):
    alice = cluster.sign_in("alice")
    c = cluster.instances[2]
    async with httpx.AsyncClient(timeout=20) as http:
        ticket = await _claimed(cluster, http, alice, "kill-user")
        before = len(cluster.channel.delivered)
        arrived = cluster.channel.arrived
        # The channel holds the first request: c is sending it, under its lease, when killed.
        cluster.channel.script = [Reply(503, delay=30)]
        r = await http.post(f"{c.url}/api/tickets/{ticket}/messages", headers=alice.headers(),
                            json={"text": "first"})
        assert r.status_code in (200, 201), r.text
        await anyio.to_thread.run_sync(cluster.channel.wait_arrived, arrived + 1, 10.0)
        for text in ("second", "third"):  # queued behind the first, on c
            r = await http.post(f"{c.url}/api/tickets/{ticket}/messages",
                                headers=alice.headers(), json={"text": text})
            assert r.status_code in (200, 201), r.text
        cluster.kill(c)
        killed = time.monotonic()
        delivered = await anyio.to_thread.run_sync(
            cluster.channel.wait_delivered, before + 3, LEASE_SECONDS + 20)
        handed_after = time.monotonic() - killed
    assert [_text(d.body) for d in delivered[before:]] == ["first", "second", "third"]
    async def recorded() -> list[Any] | None:
        rows = await query(cluster, "SELECT d.state, d.idempotency_key FROM delivery d JOIN "
                                    "message m ON m.id = d.message_id WHERE m.ticket_id = :t "
                                    "ORDER BY d.id", t=ticket)
        return rows if [row.state for row in rows] == ["delivered"] * 3 else None

    rows = await wait_until(recorded, within=10, what="the three deliveries recorded")
    # The first was sent again with the key it had when c died: the channel can dedupe it.
    assert delivered[before].headers["idempotency-key"] == rows[0].idempotency_key
    assert handed_after <= LEASE_SECONDS + 10, handed_after
    cluster.restart(c)
