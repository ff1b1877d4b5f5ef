"""Three real `connector serve` processes on one fresh PostgreSQL database and one
`redis-server` the tests start, stop and restart; one fake channel (a real HTTP server).

The instances share one public URL, as behind a load balancer: the browser's Origin
is that URL whichever instance answers. The cluster is made once per module and
started all at once on the empty database (migrations and the first admin included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect

from connector.accounts import auth
from tests import builders
from tests.conftest import PASSWORD, free_port
from tests.fakes import FakeChannel
from tests.helpers import REDIS_SERVER, Redis, postgres_database
from tests.realtime_helpers import Stream
from tests.test_process import connector_command

PUBLIC = "http://desk.test"
ADMIN_PASSWORD = "cluster admin password 1"
#: Short delivery timings so that a lease runs out within a test.
LEASE_SECONDS = 4.0


@dataclass
class Instance:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@dataclass
class Person:
    """A signed-in user: one session, usable on every instance."""

    name: str
    user_id: int
    token: str
    csrf: str

    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{auth.COOKIE}={self.token}", "X-CSRF-Token": self.csrf,
                "Origin": PUBLIC}


class Cluster:
    def __init__(self, tmp_path: Path, database_url: str, redis: Redis,
                 channel: FakeChannel, env: dict[str, str] | None = None) -> None:
        self.redis = redis
        self.channel = channel
        self.database_url = database_url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        self.env.update({
            "CONNECTOR_DATABASE_URL": database_url, "CONNECTOR_BUS_URL": redis.url,
            "CONNECTOR_HOST": "127.0.0.1", "CONNECTOR_PUBLIC_URL": PUBLIC,
            # The fake channel listens on loopback, which outbound calls refuse by default.
            "CONNECTOR_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            "CONNECTOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CONNECTOR_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
            "CONNECTOR_DELIVERY_TIMEOUT_SECONDS": "3",
            "CONNECTOR_DELIVERY_POLL_SECONDS": "0.2",
            "CONNECTOR_RETRY_BASE_SECONDS": "0.2", "CONNECTOR_RETRY_MAX_DELAY_SECONDS": "1",
            "CONNECTOR_LOGIN_MAX_FAILURES": "3", "PYTHONUNBUFFERED": "1",
        })
        self.env.update(env or {})  # a test module's own settings (tests/routing/)
        self.instances = [Instance(name, free_port(), tmp_path / f"serve-{name}.log")
                          for name in "abc"]
        self.bot: dict[str, Any] = {}
        self._runs = 0

    # Processes.

    def start_all(self) -> None:
        """Start every instance at the same moment, then wait for each to be ready."""
        for instance in self.instances:
            self._spawn(instance)
        with ThreadPoolExecutor(len(self.instances)) as pool:
            list(pool.map(self._wait_ready, self.instances))

    def _spawn(self, instance: Instance) -> None:
        self._runs += 1
        instance.log = instance.log.with_name(f"serve-{instance.name}-{self._runs}.log")
        with instance.log.open("wb") as out:
            instance.proc = subprocess.Popen(
                [*connector_command(), "serve"], env={**self.env,
                                                      "CONNECTOR_PORT": str(instance.port)},
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _wait_ready(self, instance: Instance) -> None:
        deadline = time.monotonic() + 60
        assert instance.proc is not None
        while True:
            assert instance.proc.poll() is None, \
                f"{instance.name} exited {instance.proc.returncode}:\n{instance.log.read_text()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{instance.url}/readyz", timeout=1).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{instance.name} not up:\n" \
                                                f"{instance.log.read_text()}"
            time.sleep(0.1)

    def kill(self, instance: Instance) -> None:
        """kill -9: no shutdown of any kind."""
        assert instance.proc is not None
        os.kill(instance.proc.pid, signal.SIGKILL)
        instance.proc.wait(10)

    def restart(self, instance: Instance) -> None:
        self._spawn(instance)
        self._wait_ready(instance)

    def stop_all(self) -> None:
        for instance in self.instances:
            if instance.proc is not None and instance.proc.poll() is None:
                instance.proc.terminate()
        for instance in self.instances:
            if instance.proc is not None:
                try:
                    instance.proc.wait(15)
                except subprocess.TimeoutExpired:
                    instance.proc.kill()
                    instance.proc.wait(10)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.instances[0].log.parent.glob(
            "serve-*.log")))

    # Through the HTTP API, as a browser or a bot platform would.

    def sign_in(self, name: str, password: str = PASSWORD, on: int = 0) -> Person:
        r = httpx.post(f"{self.instances[on].url}/api/login", headers={"Origin": PUBLIC},
                       json={"username": name, "password": password}, timeout=20)
        assert r.status_code == 200, r.text
        return Person(name, r.json()["user"]["id"], r.cookies[auth.COOKIE],
                      r.json()["csrf_token"])

    def setup(self) -> None:
        """The bot and the people every test uses, made through the admin API."""
        admin = self.sign_in("admin", ADMIN_PASSWORD)
        url = self.instances[0].url
        r = httpx.post(f"{url}/api/integrations", headers=admin.headers(), timeout=20,
                       json={"name": "Shop bot", "channel_url": self.channel.url})
        assert r.status_code == 201, r.text
        self.bot = r.json()
        for name, role in (("sam", "supervisor"), ("sue", "supervisor"),
                           ("alice", "agent"), ("bob", "agent")):
            r = httpx.post(f"{url}/api/users", headers=admin.headers(), timeout=20,
                           json={"username": name, "password": PASSWORD, "role": role})
            assert r.status_code == 201, r.text

    def hook_path(self, key: str | None = None) -> str:
        return f"/hooks/smartly/{self.bot['id']}?key={key or self.bot['key']}"

    async def turn(self, http: httpx.AsyncClient, instance: Instance, end_user: str, text: str,
                   *, key: str | None = None, **kw: Any) -> httpx.Response:
        return await http.post(f"{instance.url}{self.hook_path(key)}",
                               json=builders.turn(end_user, text, answer=None, **kw))

    @contextlib.asynccontextmanager
    async def console(self, who: Person, instance: Instance) -> AsyncIterator[Stream]:
        """A console of `who` on `instance`, read up to its hello frame."""
        async with connect(instance.ws_url, proxy=None, open_timeout=10, additional_headers={
                "Cookie": f"{auth.COOKIE}={who.token}", "Origin": PUBLIC}) as ws:
            s = Stream(ws)
            s.hello = await s.next()
            assert s.hello["type"] == "hello", s.hello
            yield s


@contextlib.contextmanager
def running_cluster(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A `Cluster` (its `env` added to the default) started at once on a fresh database,
    with its Redis and fake channel; all stopped after."""
    if not REDIS_SERVER.exists():
        pytest.skip("redis-server is missing: run scripts/install-test-deps.sh")
    redis = Redis(tmp).start()
    channel = FakeChannel().start()
    try:
        with postgres_database() as database_url:
            c = Cluster(tmp, database_url, redis, channel, env=env)
            try:
                c.start_all()
                c.setup()
                yield c
            finally:
                c.stop_all()
    finally:
        channel.stop()
        redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


async def query(cluster: Cluster, sql: str, **params: Any) -> list[Any]:
    """Rows of `sql` on the cluster's database, read by the test itself."""
    engine = create_async_engine(cluster.database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())
    finally:
        await engine.dispose()
