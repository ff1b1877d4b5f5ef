"""`connector backup` and `connector restore` (`storage.sqlite.backup`, `storage.sqlite.inuse`):
a backup taken by another process while a live server runs and writes, restored into a
fresh path and served from there; a restore refused while a server runs on the
database; bad backups refused; PostgreSQL pointed to pg_dump, and its round trip
through pg_dump/pg_restore.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.cli import main
from connector.settings import Settings
from connector.storage.models import Conversation
from tests import builders
from tests.conftest import LiveServer, add_bot, free_port, make_settings
from tests.fakes import FakeChannel
from tests.helpers import postgres_database, rows, running

ROOT = Path(__file__).resolve().parents[2]


def connector(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    """The `connector` command in a process of its own, on `settings`' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env.update(CONNECTOR_DATABASE_URL=settings.database_url, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "connector.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)


def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
               database_url: str, *argv: str) -> tuple[int, str, str]:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def users_in(server: LiveServer) -> set[str]:
    return {c["end_user_id"] for c in server.run(rows(server.app, Conversation))}


def test_a_backup_of_a_running_server_restores_and_serves(live, tmp_path, channel):
    bot = live.run(add_bot(live.app, channel.url))
    with httpx.Client(base_url=live.url) as http:
        for n in range(5):
            assert http.post(bot.smartly_path, json=builders.turn(
                f"before-{n}", "help", need_help=n == 0)).status_code == 200
    # Webhooks keep arriving while the backup runs.
    stop, written = threading.Event(), []

    def keep_writing() -> None:
        with httpx.Client(base_url=live.url) as http:
            while not stop.is_set():
                user = f"during-{len(written)}"
                if http.post(bot.smartly_path, json=builders.turn(user)).status_code == 200:
                    written.append(user)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 3:
            threading.Event().wait(0.01)
        backup = tmp_path / "backups" / "connector-backup.db"
        backup.parent.mkdir()
        done = connector(live.settings, "backup", str(backup))
        assert done.returncode == 0, done.stderr
        assert "backed up" in done.stdout
    finally:
        stop.set()
        writer.join()
    assert len(written) >= 3

    # Refused while the server runs on the database: exit 2, one line, nothing changed.
    refused = connector(live.settings, "restore", str(backup), "--yes")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "in use by a running connector" in refused.stderr
    assert {f"before-{n}" for n in range(5)} <= users_in(live)

    # Restored into a fresh path, a connector starts on it and finds the data.
    port = free_port()
    fresh = make_settings(tmp_path / "restored", port=port, public_url=f"http://127.0.0.1:{port}")
    restored = connector(fresh, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout
    assert fresh.sqlite_path is not None
    with sqlite3.connect(fresh.sqlite_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.execute("INSERT INTO message_fts(message_fts) VALUES ('integrity-check')")
    migrated = connector(fresh, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    server = LiveServer(fresh).start()
    try:
        found = users_in(server)
        assert {f"before-{n}" for n in range(5)} <= found
        assert {u for u in found if u.startswith("during-")}  # some writes of the backup's time
        assert found <= {f"before-{n}" for n in range(5)} | set(written)
        with httpx.Client(base_url=server.url) as http:  # and it takes new webhooks
            assert http.post(bot.smartly_path, json=builders.turn("after")).status_code == 200
        assert "after" in users_in(server)
    finally:
        server.stop()


def test_restore_over_a_stopped_database_asks_for_yes(tmp_path, migrated_db, monkeypatch,
                                                       capsys):
    target = make_settings(tmp_path)
    shutil.copyfile(migrated_db, tmp_path / "connector.db")
    backup = tmp_path / "backup.db"
    code, out, _ = in_process(monkeypatch, capsys, target.database_url, "backup", str(backup))
    assert code == 0 and backup.is_file()
    code, _, err = in_process(monkeypatch, capsys, target.database_url, "backup", str(backup))
    assert code == 1 and "exists" in err
    code, _, err = in_process(monkeypatch, capsys, target.database_url, "restore", str(backup))
    assert code == 1 and "add --yes" in err
    code, out, _ = in_process(monkeypatch, capsys, target.database_url, "restore",
                              str(backup), "--yes")
    assert code == 0 and "restored" in out


def test_a_restore_refuses_what_is_no_backup_of_ours(tmp_path, migrated_db, monkeypatch,
                                                     capsys):
    url = make_settings(tmp_path / "db").database_url
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    newer = tmp_path / "newer.db"
    shutil.copyfile(migrated_db, newer)
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    for path, message in ((tmp_path / "missing.db", "no file"),
                          (text, "not a SQLite database"),
                          (other, "not a connector database"),
                          (newer, "schema revision 9999, unknown")):
        code, _, err = in_process(monkeypatch, capsys, url, "restore", str(path), "--yes")
        assert (code, err.count("\n")) == (1, 1) and message in err, err
    assert not (tmp_path / "db" / "connector.db").exists()


@pytest.mark.parametrize(("verb", "tool"), [("backup", "pg_dump"), ("restore", "pg_restore")])
def test_postgresql_is_pointed_to_pg_dump(tmp_path, monkeypatch, capsys, verb, tool):
    code, _, err = in_process(monkeypatch, capsys,
                              "postgresql+asyncpg://postgres@127.0.0.1:5432/nowhere",
                              verb, str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1
    assert tool in err and "docs/operations.md" in err


@pytest.mark.skipif(shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
                    reason="pg_dump and pg_restore are not installed")
def test_postgresql_round_trip_with_pg_dump_and_pg_restore(tmp_path, channel: FakeChannel):
    """What docs/operations.md says to run, run: pg_dump -Fc, then pg_restore into a new
    database, and a connector on it finds the data."""
    dump = tmp_path / "connector.dump"
    with postgres_database() as source, postgres_database() as target:
        async def write() -> None:
            async with running(make_settings(tmp_path, database_url=source)) as (app, client):
                bot = await add_bot(app, channel.url)
                r = await client.post(bot.smartly_path, json=builders.turn(
                    "pg-user", "help", need_help=True))
                assert r.status_code == 200

        asyncio.run(write())
        plain = source.replace("postgresql+asyncpg", "postgresql")
        subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), plain], check=True,
                       timeout=120)
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d",
                        target.replace("postgresql+asyncpg", "postgresql"), str(dump)],
                       check=True, timeout=120)

        async def read() -> Any:
            async with running(make_settings(tmp_path, database_url=target)) as (app, _):
                return await rows(app, Conversation)

        assert [c["end_user_id"] for c in asyncio.run(read())] == ["pg-user"]
