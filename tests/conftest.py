"""Fixtures for real resources: a SQLite file, the app with its lifespan, HTTP fakes."""

from __future__ import annotations

import asyncio
import functools
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from connector.accounts import integrations, users
from connector.accounts.security import hash_password
from connector.app import create_app
from connector.cli import server_options
from connector.settings import Settings
from connector.storage.db import utcnow
from connector.storage.migrate import upgrade
from connector.storage.models import Integration, User
from tests.fakes import FakeChannel
from tests.helpers import store_of

#: The browser fixtures (`browser`, `consoles`, `staff`) for the console tests, and
#: the live-stream tests' `world`.
pytest_plugins = ["tests.browser", "tests.realtime_helpers"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'connector.db'}",
        "public_url": "http://testserver",
        "retry_base_seconds": 0.05,
        "retry_max_delay_seconds": 0.5,
        "delivery_poll_seconds": 0.05,
        "delivery_timeout_seconds": 2.0,
        "delivery_lease_seconds": 3.0,
        "log_level": "info",
        # The fakes listen on loopback; tests of the outbound rules pass their own list.
        "outbound_allow_networks": ["127.0.0.0/8"],
        # Tests of other things let an agent hold many tickets; tests of routing and
        # capacity set their own (tests/routing/).
        "agent_capacity": 1000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head; each test gets a copy (much faster than migrating)."""
    s = make_settings(tmp_path_factory.mktemp("migrated"))
    upgrade(s)
    assert s.sqlite_path is not None
    return s.sqlite_path


def fresh_database(migrated_db: Path, tmp_path: Path) -> None:
    shutil.copyfile(migrated_db, tmp_path / "connector.db")


@pytest.fixture
def settings(tmp_path: Path, migrated_db: Path) -> Settings:
    fresh_database(migrated_db, tmp_path)
    return make_settings(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def each_dialect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh SQLite file, then on a fresh PostgreSQL database: a module
    whose `settings` fixture returns this runs its `app` tests on both."""
    if request.param == "sqlite":
        fresh_database(request.getfixturevalue("migrated_db"), tmp_path)
        yield make_settings(tmp_path)
        return
    from tests.helpers import postgres_database

    with postgres_database() as url:
        pg = make_settings(tmp_path, database_url=url)
        upgrade(pg)
        yield pg


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh, migrated PostgreSQL database."""
    from tests.helpers import postgres_database

    with postgres_database() as url:
        pg = make_settings(tmp_path, database_url=url)
        upgrade(pg)
        yield pg


@pytest.fixture
async def pg_engine(pg_settings: Settings) -> AsyncIterator[Any]:
    """The async engine on `pg_settings`, with an integration `i1`."""
    from connector.storage.db import create_engine

    engine = create_engine(pg_settings)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(Integration.__table__).values(
            id="i1", name="b", channel_url="http://x", verify_token="t", key_hash="h",
            created_at=utcnow()))
    yield engine
    await engine.dispose()


@pytest.fixture
def channel() -> Iterator[FakeChannel]:
    fake = FakeChannel().start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver() -> Iterator[FakeChannel]:
    """Another fake HTTP server: the customer's event-webhook receiver."""
    fake = FakeChannel().start()
    yield fake
    fake.stop()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Bot:
    """A registered integration, with what the bot admin was shown."""

    id: str
    key: str
    verify_token: str
    smartly_path: str
    chatlayer_path: str


async def add_bot(app: Any, channel_url: str, name: str = "bot") -> Bot:
    async with app.state.store.transaction() as tx:
        created = await integrations.create(tx.conn, name=name, channel_url=channel_url)
    i = created.integration
    return Bot(i.id, created.key, i.verify_token, f"/hooks/smartly/{i.id}?key={created.key}",
               f"/hooks/chatlayer/{i.id}")


@pytest.fixture
async def bot(app: Any, channel: FakeChannel) -> Bot:
    return await add_bot(app, channel.url)


#: The password of every staff account the tests make, unless a test gives another.
PASSWORD = "correct horse battery"


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    """A real argon2 hash of `password`, made once per password: creating users stays
    cheap, while every sign-in still verifies against argon2."""
    return hash_password(password)


async def add_user(app: Any, username: str, role: str = "agent",
                   password: str = PASSWORD) -> User:
    """The one way tests make a staff account: `users.create` (its checks included) on
    the database of `app` (or of a `Store`), with `password_hash(password)`."""
    async with store_of(app).transaction() as tx:
        return await users.create(tx.conn, username, password, role,
                                  password_hash=password_hash(password))


async def sign_in(stack: AsyncExitStack, app: Any, username: str,
                  password: str = PASSWORD) -> httpx.AsyncClient:
    """An HTTP client on `app` (closed with `stack`) signed in as `username`: with its
    session cookie and CSRF header."""
    c = await stack.enter_async_context(httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"))
    r = await c.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def on_each_dialect() -> Any:
    """A module's `settings = on_each_dialect()`: overrides the `settings` fixture, so its
    `app` tests run on SQLite, then on PostgreSQL (`each_dialect`)."""
    @pytest.fixture
    def settings(each_dialect: Settings) -> Settings:
        return each_dialect
    return settings


def signed_in_staff(*people: tuple[str, str]) -> Any:
    """A module's `staff = signed_in_staff(("alice", "agent"), ...)`: a fixture making each
    (username, role) on `app` and signing them in: username → client."""
    @pytest.fixture
    async def staff(app: Any) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
        async with AsyncExitStack() as stack:
            out = {}
            for name, role in people:
                await add_user(app, name, role)
                out[name] = await sign_in(stack, app, name)
            yield out
    return staff


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app under a real uvicorn on a loopback port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.port = settings.port
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="on", ws_max_size=65 * 1024,
                                ws_per_message_deflate=settings.ws_compression)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server's event loop (e.g. a domain call)."""
        loop = self.server_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(15)

    def server_loop(self) -> asyncio.AbstractEventLoop:
        return self.app.state.loop


class ServedLikeServe(LiveServer):
    """`LiveServer`, but with uvicorn's options from `server_options`, as `serve` runs it.
    `protocol`, when given, makes the HTTP protocol class from `serve`'s (a subclass that
    observes it, for a test)."""

    def __init__(self, settings: Settings,
                 protocol: Callable[[type[Any]], type[Any]] | None = None) -> None:
        super().__init__(settings)
        options = server_options(settings)
        if protocol is not None:
            options["http"] = protocol(options["http"])
        config = uvicorn.Config(self.app, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)


def serve_like_serve(tmp_path: Path, migrated_db: Path,
                     server: type[ServedLikeServe] = ServedLikeServe,
                     **overrides: Any) -> ServedLikeServe:
    """A started `server` (`ServedLikeServe` or a subclass) on a fresh database, with these
    settings."""
    port = free_port()
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path, host="127.0.0.1", port=port,
                             public_url=f"http://127.0.0.1:{port}", **overrides)
    return server(settings).start()


@pytest.fixture
def live_settings(tmp_path: Path, migrated_db: Path) -> Settings:
    port = free_port()
    fresh_database(migrated_db, tmp_path)
    return make_settings(tmp_path, port=port, public_url=f"http://127.0.0.1:{port}")


@pytest.fixture
def live(live_settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(live_settings).start()
    yield server
    server.stop()
