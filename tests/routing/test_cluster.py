"""Routing with three real `connector serve` instances on one PostgreSQL database
(tests/cluster/conftest.py's `Cluster`, with routing settings of this module): a
burst of handovers posted to all three at once is assigned exactly once per ticket,
never above an agent's capacity, balanced across the agents."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.cluster.conftest import ADMIN_PASSWORD, Cluster, Person, query, running_cluster
from tests.conftest import PASSWORD
from tests.helpers import wait_until
from tests.realtime_helpers import Stream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

AGENTS = 5
CAPACITY = 50
BURST = 200
ENV = {"CONNECTOR_ROUTING": "auto", "CONNECTOR_AGENT_CAPACITY": "3",
       "CONNECTOR_ROUTING_FALLBACK_SECONDS": "1", "CONNECTOR_REQUEUE_AFTER_SECONDS": "0",
       "CONNECTOR_AUTO_RESOLVE_AFTER_SECONDS": "0", "CONNECTOR_PRESENCE_GRACE_SECONDS": "5"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("routing-cluster"), env=ENV) as c:
        yield c


async def drain(s: Stream) -> None:
    """Read a console for as long as the test runs (its frames kept in `s.frames`)."""
    with contextlib.suppress(Exception):
        while True:
            await s.next(within=3600)


@contextlib.asynccontextmanager
async def agents_online(cluster: Cluster, http: httpx.AsyncClient,
                        ) -> AsyncIterator[list[tuple[Person, Stream]]]:
    """`AGENTS` agents with capacity `CAPACITY`, each with a console on one of the
    instances in turn and set online through that instance."""
    admin = cluster.sign_in("admin", ADMIN_PASSWORD)
    base = cluster.instances[0].url
    people = []
    for n in range(AGENTS):
        r = await http.post(f"{base}/api/users", headers=admin.headers(), json={
            "username": f"agent{n}", "password": PASSWORD, "role": "agent"})
        assert r.status_code == 201, r.text
        r = await http.patch(f"{base}/api/users/{r.json()['id']}", headers=admin.headers(),
                             json={"max_concurrent": CAPACITY})
        assert r.status_code == 200, r.text
        people.append(cluster.sign_in(f"agent{n}", on=n % 3))
    async with contextlib.AsyncExitStack() as stack:
        out = []
        for n, who in enumerate(people):
            instance = cluster.instances[n % 3]
            console = await stack.enter_async_context(cluster.console(who, instance))
            reader = asyncio.create_task(drain(console))
            stack.callback(reader.cancel)
            r = await http.patch(f"{instance.url}/api/me", headers=who.headers(),
                                 json={"status": "online"})
            assert r.status_code == 200 and r.json()["status"] == "online", r.text
            out.append((who, console))
        yield out


async def handovers(cluster: Cluster, http: httpx.AsyncClient, prefix: str,
                    count: int) -> list[int]:
    """`count` handovers posted at once, spread over the instances: their ticket ids."""
    async def one(n: int) -> int:
        r = await cluster.turn(http, cluster.instances[n % 3], f"{prefix}-{n}",
                               "I want a human", need_help=True)
        assert r.status_code == 200 and r.json()["ticket_opened"], r.text
        return r.json()["ticket_id"]

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def most_held(cluster: Cluster) -> dict[int, int]:
    """Per agent, the most tickets they ever held at once, replaying every transition
    in the order written."""
    held: collections.Counter[int] = collections.Counter()
    most: dict[int, int] = {}
    for to_state, assignee in await query(
            cluster, "SELECT to_state, assignee_id FROM ticket_transition ORDER BY id"):
        if to_state == "assigned":
            held[assignee] += 1
            most[assignee] = max(most.get(assignee, 0), held[assignee])
    # Nothing leaves an agent in this module (no resolve, re-queue or transfer).
    assert not await query(cluster, "SELECT 1 FROM ticket_transition "
                                    "WHERE from_state = 'assigned'")
    return most


async def test_a_burst_over_three_instances_assigned_once_each_balanced_within_capacity(
        cluster: Cluster):
    async with httpx.AsyncClient(timeout=60) as http, \
            agents_online(cluster, http) as agents:
        ids = {who.user_id for who, _ in agents}
        tickets = await handovers(cluster, http, "burst", BURST)
        assert len(set(tickets)) == BURST

        async def all_assigned() -> bool:
            (n,) = (await query(cluster, "SELECT count(*) FROM ticket "
                                         "WHERE state = 'assigned'"))[0]
            return n == BURST

        await wait_until(all_assigned, within=60, what="every ticket assigned")
        moves = await query(cluster, "SELECT ticket_id, action, actor_id, reason, assignee_id "
                                     "FROM ticket_transition WHERE to_state = 'assigned'")
        per_ticket = collections.Counter(m.ticket_id for m in moves)
        assert sorted(per_ticket) == sorted(tickets)
        assert set(per_ticket.values()) == {1}  # never one ticket twice
        assert {(m.action, m.actor_id, m.reason) for m in moves} == {
            ("assigned", None, "routing")}
        holders = dict(await query(cluster, "SELECT id, assignee_id FROM ticket"))
        assert {m.ticket_id: m.assignee_id for m in moves} == holders
        loads = collections.Counter(holders.values())
        assert set(loads) == ids
        assert max(loads.values()) - min(loads.values()) <= 1, loads
        assert max((await most_held(cluster)).values()) <= CAPACITY

        # Each agent's console (on its own instance) is told of each of its tickets.
        for who, console in agents:
            mine = {t for t, holder in holders.items() if holder == who.user_id}

            async def told(who: Person = who, console: Stream = console,
                           mine: set[int] = mine) -> bool:
                return mine <= {f["ticket"]["id"] for f in console.frames
                                if f["type"] == "ticket.updated"
                                and f["ticket"]["assignee_id"] == who.user_id}

            await wait_until(told, within=30, what=f"{who.name}'s console told")

        # 60 more for 50 free places: every agent fills up to capacity, 10 wait.
        more = await handovers(cluster, http, "more", 60)

        async def full() -> bool:
            (n,) = (await query(cluster, "SELECT count(*) FROM ticket "
                                         "WHERE state = 'assigned'"))[0]
            return n >= AGENTS * CAPACITY

        await wait_until(full, within=60, what="as many assigned as the agents may hold")
        await asyncio.sleep(2)  # routing passes of all three instances, fallback included
        most = await most_held(cluster)
        assert most == {i: CAPACITY for i in ids}, most
        queued = {t for (t,) in await query(cluster, "SELECT id FROM ticket "
                                                     "WHERE state = 'queued'")}
        assert len(queued) == 10 and queued <= set(more)
    assert "Traceback" not in cluster.logs()
