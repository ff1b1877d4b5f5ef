"""The real `connector` command: CLI, `serve` as a process, and kill -9 with replies pending."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.accounts import users
from connector.accounts.security import verify_password
from connector.domain import tickets
from connector.settings import Settings
from connector.storage.db import create_engine
from connector.storage.models import Delivery, User
from connector.storage.store import Store
from tests import builders
from tests.conftest import PASSWORD, free_port, make_settings
from tests.fakes import Reply
from tests.helpers import rows, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def connector_command() -> list[str]:
    """The installed console script (the same one the README and Dockerfile start)."""
    beside = Path(sys.executable).parent / "connector"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("connector")
    return [found] if found else [sys.executable, "-m", "connector.cli"]


class PortTaken(Exception):
    pass


class Deployment:
    """One database file and the environment every `connector` call of a test shares."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings: Settings = make_settings(tmp_path, port=self.port, public_url=self.url)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        self.env.update({
            "CONNECTOR_DATABASE_URL": self.settings.database_url,
            "CONNECTOR_HOST": "127.0.0.1",
            "CONNECTOR_PORT": str(self.port),
            "CONNECTOR_PUBLIC_URL": self.url,
            # The fake channel listens on loopback, which outbound calls refuse by default.
            "CONNECTOR_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            "CONNECTOR_DELIVERY_LEASE_SECONDS": "2",
            "CONNECTOR_DELIVERY_TIMEOUT_SECONDS": "1",
            "CONNECTOR_DELIVERY_POLL_SECONDS": "0.2",
            "CONNECTOR_RETRY_BASE_SECONDS": "0.2",
            "CONNECTOR_RETRY_MAX_DELAY_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
            **env,
        })
        self.servers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def cli(self, *args: str, stdin: str | None = None, **env: str,
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*connector_command(), *args], env={**self.env, **env},
                              input=stdin if stdin is not None else "", capture_output=True,
                              text=True, timeout=60, check=False)

    def serve(self) -> Path:
        for _ in range(3):
            try:
                return self._serve()
            except PortTaken:
                # Another process on this machine took the port meanwhile: take another.
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
                self.env.update(CONNECTOR_PORT=str(self.port), CONNECTOR_PUBLIC_URL=self.url)
        raise AssertionError("no free port for serve")

    def _serve(self) -> Path:
        log = self.tmp_path / f"serve-{len(self.logs) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*connector_command(), "serve"], env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.servers.append(proc)
        self.logs.append(log)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                if "address already in use" in log.read_text():
                    raise PortTaken
                raise AssertionError(f"serve exited {proc.returncode}:\n{log.read_text()}")
            try:
                if (httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
                        and f"running on {self.url}" in log.read_text()):  # ours, not another
                    return log
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not come up:\n{log.read_text()}")
            time.sleep(0.05)

    @property
    def server(self) -> subprocess.Popen[bytes]:
        return self.servers[-1]

    def kill9(self) -> None:
        os.kill(self.server.pid, signal.SIGKILL)
        assert self.server.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM, as Docker and systemd do: a graceful shutdown."""
        self.server.send_signal(signal.SIGTERM)
        # Uvicorn re-raises the signal it handled once shut down, hence -SIGTERM.
        assert self.server.wait(20) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in self.logs[-1].read_text()

    def cleanup(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, CONNECTOR_ADMIN_PASSWORD="admin password 1")
    yield d
    d.cleanup()


@pytest.fixture
def fresh_deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)  # no CONNECTOR_ADMIN_PASSWORD
    yield d
    d.cleanup()


class Database:
    """The test's own view of the server's SQLite file (a second process, like the CLI)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.store = Store(self.engine)

    async def do(self, op: Any, *args: Any) -> Any:
        async with self.store.transaction() as tx:
            return await op(tx, *args)


def add_integration(d: Deployment, channel_url: str) -> dict[str, Any]:
    result = d.cli("integration", "add", "--name", "Shop bot", "--channel-url", channel_url,
                   "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- kill -9 ----------------------------------------------------------------------------------

async def test_kill_9_with_replies_pending_loses_nothing(deployment, channel):
    d = deployment
    channel.default = Reply(503)  # the channel is down the whole time of the first run
    bot = add_integration(d, channel.url)  # creates and migrates the database
    with ThreadPoolExecutor(1) as pool:  # the CLI works beside a running server
        adding = pool.submit(d.cli, "user", "add", "agent007", "--role", "agent",
                             stdin=PASSWORD + "\n")
        d.serve()
        assert adding.result().returncode == 0, adding.result().stderr

    users_ = ["u-1", "u-2", "u-3"]
    ticket_ids = {}
    key = bot["smartly_webhook_url"].split("key=", 1)[1]
    async with httpx.AsyncClient(timeout=10) as http:
        for user in users_:
            r = await http.post(f"{d.url}/hooks/smartly/{bot['id']}?key={key}",
                                json=builders.escalation(user))
            assert r.status_code == 200, r.text
            ticket_ids[user] = r.json()["ticket_id"]

    db = Database(d.settings)
    try:
        async with db.store.read() as conn:
            user = await users.by_username(conn, "agent007")
        agent = tickets.Actor(user.id, user.username, user.role)
        sent: dict[str, list[str]] = {u: [] for u in users_}

        async def reply(end_user: str, text: str) -> None:
            await db.do(tickets.reply, ticket_ids[end_user], agent, text)
            sent[end_user].append(text)

        for user_id in users_:
            await db.do(tickets.claim, ticket_ids[user_id], agent)
        for i in range(3):
            for user_id in users_:
                await reply(user_id, f"{user_id} #{i}")

        # The server found them (by polling: they were queued by another process) and is
        # failing to deliver them when it dies.
        async def every_conversation_tried() -> bool:
            tried = {r.body["recipient"]["id"] for r in channel.received}
            return tried == set(users_) and len(channel.received) >= 6

        await wait_until(every_conversation_tried, within=20, what="delivery attempts")
        d.kill9()
        pending = await rows(db.store, Delivery)
        assert len(pending) == 9
        assert all(p["state"] in ("queued", "retrying") for p in pending)
        assert channel.delivered == []

        # Accepted while the service is down: queued, not lost either.
        await reply("u-2", "u-2 while down")
        channel.default = Reply(200)
        d.serve()

        async def all_delivered() -> list[dict[str, Any]] | None:
            found = await rows(db.store, Delivery)
            return found if all(x["state"] == "delivered" for x in found) else None

        done = await wait_until(all_delivered, within=30, what="every reply delivered")
        assert len(done) == 10
        admin = await rows(db.store, User, User.role == "admin")
        assert len(admin) == 1
        assert verify_password("admin password 1", admin[0]["password_hash"])
    finally:
        await db.engine.dispose()

    for user_id, texts in sent.items():
        got = [r.body["message"]["text"] for r in channel.delivered
               if r.body["recipient"]["id"] == user_id]
        first_seen = list(dict.fromkeys(got))
        assert first_seen == texts  # every reply, at least once, in the order sent
        positions = [texts.index(t) for t in got]
        assert positions == sorted(positions)  # a resend never overtakes a later reply
        keys = {r.body["message"]["text"]: r.headers["idempotency-key"]
                for r in channel.received if r.body["recipient"]["id"] == user_id}
        assert len(set(keys.values())) == len(texts)
    d.stop()

    # The server logged requests and deliveries, never the webhook key.
    log = "\n".join(p.read_text() for p in d.logs)
    assert f"POST /hooks/smartly/{bot['id']} 200" in log
    assert "outcome=delivered" in log
    assert key not in log and bot["verify_token"] not in log
    # The admin password came from the environment: nothing printed.
    assert "one-time password" not in log and "admin password 1" not in log


# --- logs -------------------------------------------------------------------------------------

async def test_key_never_appears_in_logs(deployment, channel):
    """What a real `serve` writes, at its most talkative level: no webhook key, right or wrong.
    (Not pytest's log capture of an in-process server: pytest >= 9.2 attaches its handler to
    loggers that do not propagate, which turns uvicorn's own access log on.)"""
    d = deployment
    d.env["CONNECTOR_LOG_LEVEL"] = "debug"
    bot = add_integration(d, channel.url)
    key = bot["smartly_webhook_url"].split("key=", 1)[1]
    wrong_key = "wrong-" + key[::-1]
    hook = f"{d.url}/hooks/smartly/{bot['id']}"
    d.serve()
    async with httpx.AsyncClient(timeout=10) as http:
        async def send(key_: str, body: Any) -> int:
            return (await http.post(f"{hook}?key={key_}", json=body)).status_code

        assert await send(key, builders.turn("u-1", "hi", need_help=True)) == 200
        assert await send(key, {"event": "message_received", "payload": []}) == 422
        assert await send(wrong_key, builders.turn()) == 401
        rotated = d.cli("integration", "rotate-key", bot["id"], "--json")  # beside the server
        assert rotated.returncode == 0, rotated.stderr
        new_key = json.loads(rotated.stdout)["smartly_webhook_url"].split("key=", 1)[1]
        assert await send(new_key, builders.turn()) == 200
        assert await send(key, builders.turn()) == 200  # the old key, within its grace time
    d.stop()

    log = d.logs[-1].read_text()
    access = [line for line in log.splitlines()
              if " connector.access: " in line and f"/hooks/smartly/{bot['id']}" in line]
    assert len(access) == 5, log
    assert sum(f"/hooks/smartly/{bot['id']} 401 " in line for line in access) == 1
    for secret in (key, wrong_key, new_key):
        assert secret not in log


# --- the console script ---------------------------------------------------------------

def test_bad_config_is_exit_2_and_one_line(deployment):
    cases = [("CONNECTOR_PORT", "abc", ("serve",)),
             ("CONNECTOR_DATABASE_URL", "mysql://x", ("integration", "list"))]
    with ThreadPoolExecutor(len(cases)) as pool:  # two interpreter start-ups at once
        results = list(pool.map(lambda c: deployment.cli(*c[2], **{c[0]: c[1]}), cases))
    for (name, _, _), result in zip(cases, results, strict=True):
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {name}: ")
        assert result.stdout == ""


async def test_first_serve_prints_a_one_time_admin_password_once(fresh_deployment):
    d = fresh_deployment
    first = d.serve()
    async with httpx.AsyncClient(timeout=10) as http:
        health = await http.get(f"{d.url}/healthz")
        ready = await http.get(f"{d.url}/readyz")
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok",
                                                        "bus": "memory"})
    d.stop()

    text = first.read_text()
    assert "one-time password" in text
    marker = text.index("one-time password")
    password = text[marker:].split()[2]  # "one-time password:", then the password
    assert len(password) >= 16
    assert text.count(password) == 1

    db = Database(d.settings)
    try:
        (admin,) = await rows(db.store, User)
    finally:
        await db.engine.dispose()
    assert (admin["username"], admin["role"]) == ("admin", "admin")
    assert verify_password(password, admin["password_hash"])

    second = d.serve()
    d.stop()
    again = second.read_text()
    assert "one-time password" not in again and password not in again
    assert "connector ready" in again
