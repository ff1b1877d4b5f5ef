"""Start-up of real `connector` processes: several at once on an empty database; a
database that cannot be reached, wrong credentials, an unwritable SQLite directory and a
port in use, each one line and exit 2."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import free_port
from tests.helpers import POSTGRES, postgres_database
from tests.test_process import Deployment, connector_command

pytestmark = pytest.mark.slow


def _up(url: str) -> bool:
    try:
        return (httpx.get(f"{url}/healthz", timeout=1).status_code == 200
                and httpx.get(f"{url}/readyz", timeout=1).status_code == 200)
    except httpx.TransportError:
        return False


def test_three_instances_started_at_once_on_an_empty_postgresql_database(tmp_path: Path):
    with postgres_database() as db_url:
        d = Deployment(tmp_path, CONNECTOR_DATABASE_URL=db_url)  # no admin password: generated
        procs: list[tuple[subprocess.Popen[bytes], Path, str]] = []
        try:
            for i in range(3):
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                log = tmp_path / f"serve-{i}.log"
                with log.open("wb") as out:
                    procs.append((subprocess.Popen(
                        [*connector_command(), "serve"],
                        env={**d.env, "CONNECTOR_PORT": str(port), "CONNECTOR_PUBLIC_URL": url},
                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL),
                        log, url))
            deadline = time.monotonic() + 60
            for proc, log, url in procs:
                while not _up(url):
                    assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()}"
                    assert time.monotonic() < deadline, f"not up:\n{log.read_text()}"
                    time.sleep(0.1)
            texts = [log.read_text() for _, log, _ in procs]
            for text in texts:
                assert "Traceback" not in text, text
            assert sum("one-time password" in text for text in texts) == 1, texts
            assert _admins(db_url) == 1
        finally:
            for proc, _, _ in procs:
                proc.kill()
                proc.wait(10)


def _admins(db_url: str) -> int:
    async def count() -> int:
        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(sa.text(
                    "SELECT count(*) FROM app_user WHERE role = 'admin'"))).scalar_one()
        finally:
            await engine.dispose()

    return asyncio.run(count())


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize("problem", ["missing database", "unreachable port"])
def test_a_database_that_cannot_be_reached_is_one_line_and_exit_2(
        tmp_path: Path, command: str, problem: str):
    if problem == "missing database":
        url = f"{POSTGRES}/connector_missing_db"
        says = 'database "connector_missing_db" does not exist'
    else:
        port = free_port()  # nothing listens there
        url = f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:{port}/connector"
        says = f"postgresql+asyncpg://postgres:***@127.0.0.1:{port}/connector"
    d = Deployment(tmp_path, CONNECTOR_DATABASE_URL=url)
    result = d.cli(command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot connect to the database "), lines
    assert says in lines[0] and "s3cret" not in lines[0], lines
    assert result.stdout == ""


def test_migrate_run_by_several_processes_at_once_on_a_new_sqlite_file(tmp_path: Path):
    d = Deployment(tmp_path)  # a database file that does not exist yet
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: d.cli("migrate"), range(8)))
    for result in results:
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        assert result.stdout == "database schema is up to date\n"


@pytest.mark.parametrize("problem", ["unknown role", "directory under a file",
                                     "unwritable directory"])
def test_wrong_credentials_or_an_unwritable_sqlite_directory_is_one_line_and_exit_2(
        tmp_path: Path, problem: str):
    if problem == "unknown role":  # the test server trusts every password: a wrong user
        url = f"{POSTGRES.replace('postgres@', 'nobody_here:s3cret@')}/postgres"
        says = 'role "nobody_here" does not exist'
    elif problem == "directory under a file":
        (tmp_path / "a-file").write_text("")
        url = f"sqlite+aiosqlite:///{tmp_path}/a-file/data/connector.db"
        says = "Not a directory"
    else:
        if os.geteuid() == 0:
            pytest.skip("root may write to any directory")
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        url = f"sqlite+aiosqlite:///{locked}/connector.db"
        says = "unable to open database file"
    d = Deployment(tmp_path, CONNECTOR_DATABASE_URL=url)
    result = d.cli("serve")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if " INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot connect to the database "), lines
    assert says in lines[0] and "s3cret" not in lines[0], lines


def test_a_port_in_use_is_one_line_and_exit_2_before_any_migration(tmp_path: Path):
    d = Deployment(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", d.port))
        taken.listen()
        result = d.cli("serve")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if " INFO " not in line]
    assert lines == [f"error: cannot listen on 127.0.0.1:{d.port} (CONNECTOR_HOST, "
                     "CONNECTOR_PORT): address already in use"], result.stderr
    assert d.settings.sqlite_path is not None
    assert not d.settings.sqlite_path.exists()  # checked before migrating: no database made
