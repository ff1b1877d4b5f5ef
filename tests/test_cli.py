"""`connector` subcommands, run through `connector.cli.main` in this process.

(The console script itself, `serve` and kill -9 are in test_process.py.)
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connector.accounts.security import hash_secret, verify_password
from connector.cli import main
from connector.settings import Settings
from connector.storage.audit_models import AuditEvent
from connector.storage.db import utcnow
from connector.storage.models import Integration, Message, User, UserSession
from tests import builders
from tests.conftest import fresh_database, make_settings
from tests.helpers import execute as execute_on
from tests.helpers import rows, running

PUBLIC = "https://connector.example.com"


class CLI:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.monkeypatch, self.capsys = monkeypatch, capsys
        for name in list(os.environ):
            if name.startswith("CONNECTOR_"):
                monkeypatch.delenv(name)
        self.settings: Settings = make_settings(tmp_path, public_url=PUBLIC)
        monkeypatch.setenv("CONNECTOR_DATABASE_URL", self.settings.database_url)
        monkeypatch.setenv("CONNECTOR_PUBLIC_URL", PUBLIC)
        # As the suite's settings: the fakes listen on loopback.
        monkeypatch.setenv("CONNECTOR_OUTBOUND_ALLOW_NETWORKS", '["127.0.0.0/8"]')

    def __call__(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    def table(self, model: Any) -> list[dict[str, Any]]:
        return self.run(rows, model)  # type: ignore[no-any-return]

    def run(self, work: Any, *args: Any) -> Any:
        """`work(store, *args)` on the CLI's database, from outside any event loop."""
        async def run() -> Any:
            from connector.storage.db import create_engine
            from connector.storage.store import Store

            engine = create_engine(self.settings)
            try:
                return await work(Store(engine), *args)
            finally:
                await engine.dispose()

        return asyncio.run(run())


@pytest.fixture
def cli(tmp_path, migrated_db, monkeypatch, capsys) -> CLI:
    fresh_database(migrated_db, tmp_path)  # each command still runs the migrations (no-op)
    return CLI(tmp_path, monkeypatch, capsys)


def test_integration_add_prints_what_the_bot_admin_needs(cli):
    code, out, _ = cli("integration", "add", "--name", "Shop bot", "--channel-url",
                       "https://channel.example/webhook", "--json")
    assert code == 0
    created = json.loads(out)
    assert {"id", "smartly_webhook_url", "chatlayer_webhook_url", "verify_token"} <= set(created)
    prefix = f"{PUBLIC}/hooks/smartly/{created['id']}?key="
    assert created["smartly_webhook_url"].startswith(prefix)
    key = created["smartly_webhook_url"].removeprefix(prefix)
    assert len(key) >= 43  # 32 random bytes, URL-safe base64
    assert created["chatlayer_webhook_url"] == f"{PUBLIC}/hooks/chatlayer/{created['id']}"
    assert len(created["verify_token"]) >= 32
    assert created["channel_url"] == "https://channel.example/webhook"

    (row,) = cli.table(Integration)
    assert row["id"] == created["id"] and row["verify_token"] == created["verify_token"]
    assert row["key_hash"] == hash_secret(key)
    # Stored only as a hash: the key is nowhere in the database files.
    assert cli.settings.sqlite_path is not None
    stored = b"".join(p.read_bytes() for p in cli.settings.sqlite_path.parent.glob("*.db*"))
    assert key.encode() not in stored


def test_integration_add_text_output_and_given_token(cli):
    code, out, _ = cli("integration", "add", "--name", "Second", "--channel-url",
                       "http://127.0.0.1:9/x", "--verify-token", "my-own-token")
    assert code == 0
    (row,) = cli.table(Integration)
    assert row["verify_token"] == "my-own-token"
    assert f"{PUBLIC}/hooks/smartly/{row['id']}?key=" in out
    assert f"{PUBLIC}/hooks/chatlayer/{row['id']}" in out
    assert "my-own-token" in out and "shown only once" in out


def test_integration_add_chatlayer_offloading(cli):
    code, out, _ = cli("integration", "add", "--kind", "chatlayer-offloading", "--name", "CL",
                       "--api-url", "http://127.0.0.1:9", "--api-token", "tok-123",
                       "--verify-token", "vt-9", "--json")
    assert code == 0
    created = json.loads(out)
    (row,) = cli.table(Integration)
    assert (row["kind"], row["api_url"], row["api_token"]) == (
        "chatlayer-offloading", "http://127.0.0.1:9", "tok-123")
    assert created["offloading_webhook_url"] == (
        f"{PUBLIC}/hooks/chatlayer-offloading/{row['id']}?key={created['key']}")
    assert created["smartly_webhook_url"] is None and created["verify_token"] == "vt-9"
    assert "tok-123" not in out and created["api_token_set"] is True
    code, text, _ = cli("integration", "list")
    assert "Chatlayer Offloading webhook URL" not in text  # the keyed URL: shown once only
    assert "http://127.0.0.1:9" in text and "bound by its first event" in text


@pytest.mark.parametrize(("args", "flag"), [
    (["--kind", "chatlayer-offloading", "--name", "x", "--api-url", "http://127.0.0.1:9"],
     "--api-token"),
    (["--kind", "chatlayer-offloading", "--name", "x", "--api-token", "t"], "--api-url"),
    (["--name", "x"], "--channel-url"),
    (["--name", "x", "--channel-url", "not a url"], "--channel-url"),
    (["--name", "x", "--channel-url", "ftp://files.example/x"], "--channel-url"),
    (["--name", "   ", "--channel-url", "https://c.example"], "--name"),
    (["--name", "x", "--channel-url", "https://c.example", "--verify-token", ""],
     "--verify-token"),
])
def test_integration_add_refuses_bad_values(cli, args, flag):
    code, _out, err = cli("integration", "add", *args)
    assert code == 1
    assert err.startswith(f"error: {flag}: ")
    assert cli.table(Integration) == []


def test_integration_list(cli):
    code, out, _ = cli("integration", "list")
    assert code == 0 and "no integrations yet" in out
    ids = []
    for name in ("one", "two"):
        code, out, _ = cli("integration", "add", "--name", name, "--channel-url",
                           "https://c.example/hook", "--json")
        ids.append(json.loads(out)["id"])
    code, out, _ = cli("integration", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [i["id"] for i in listed] == ids
    assert [i["name"] for i in listed] == ["one", "two"]
    assert all("smartly_webhook_url" not in i for i in listed)  # the key is not shown again
    code, out, _ = cli("integration", "list")
    assert all(i in out for i in ids) and "?key=" not in out


def test_rotate_key_then_both_keys_work_during_the_grace(cli, channel):
    code, out, _ = cli("integration", "add", "--name", "bot", "--channel-url", channel.url,
                       "--json")
    created = json.loads(out)
    code, out, _ = cli("integration", "rotate-key", created["id"], "--grace", "3600", "--json")
    assert code == 0
    rotated = json.loads(out)
    assert rotated["id"] == created["id"]
    assert rotated["smartly_webhook_url"] != created["smartly_webhook_url"]
    assert "previous_key_valid_until" in rotated
    code, out, _ = cli("integration", "rotate-key", created["id"])  # text output
    assert code == 0 and "Previous key valid until" in out
    newest = out.split("?key=", 1)[1].split()[0]
    code, _, err = cli("integration", "rotate-key", "no-such-id")
    assert code == 1 and "no-such-id" in err

    def path(url: str) -> str:
        return url.removeprefix(PUBLIC)

    async def check() -> list[int]:
        async with running(cli.settings) as (_, client):
            urls = [created["smartly_webhook_url"], rotated["smartly_webhook_url"],
                    f"{PUBLIC}/hooks/smartly/{created['id']}?key={newest}"]
            return [(await client.post(path(u), json=builders.turn())).status_code
                    for u in urls]

    # The first key was replaced twice: only the last two work.
    assert asyncio.run(check()) == [401, 200, 200]


def test_user_add_with_each_role(cli):
    for name, role in (("ann", "agent"), ("sue", "supervisor"), ("ada", "admin")):
        code, out, err = cli("user", "add", name, "--role", role, stdin=f"pass word {name}\n")
        assert code == 0, err
        assert out.strip() == f"user {name} ({role}) created"
        assert "pass word" not in out + err
    found = {u["username"]: u for u in cli.table(User)}
    assert {n: u["role"] for n, u in found.items()} == {
        "ann": "agent", "sue": "supervisor", "ada": "admin"}
    for name, user in found.items():
        assert user["password_hash"].startswith("$argon2id$")
        assert verify_password(f"pass word {name}", user["password_hash"])
        assert not verify_password(f"pass word {name}\n", user["password_hash"])


@pytest.mark.parametrize(("argv", "stdin", "code", "message"), [
    (["user", "add", "tim", "--role", "agent"], "short\n", 1, "password"),
    (["user", "add", "tim", "--role", "agent"], "", 1, "password"),
    (["user", "add", "bad name", "--role", "agent"], "long enough pw\n", 1, "username"),
    (["user", "add", "tim", "--role", "king"], "long enough pw\n", 2, "--role"),
    (["user", "add", "tim"], "long enough pw\n", 2, "--role"),
])
def test_user_add_refuses_bad_input(cli, argv, stdin, code, message):
    got, _, err = cli(*argv, stdin=stdin)
    assert got == code
    assert message in err
    if code == 1:  # the database was reached, and nothing was created
        assert cli.table(User) == []


def test_user_add_twice_is_refused(cli):
    assert cli("user", "add", "ann", "--role", "agent", stdin="long enough pw\n")[0] == 0
    code, _, err = cli("user", "add", "ann", "--role", "admin", stdin="other password\n")
    assert code == 1 and "already taken" in err
    (ann,) = cli.table(User)
    assert ann["role"] == "agent" and verify_password("long enough pw", ann["password_hash"])


@pytest.mark.parametrize(("name", "value"), [
    ("CONNECTOR_PORT", "abc"),
    ("CONNECTOR_DATABASE_URL", "mysql://x"),
    ("CONNECTOR_PUBLIC_URL", "connector.example.com"),
    ("CONNECTOR_ALLOWED_ORIGINS", "https://a.example"),
    ("CONNECTOR_LOG_JSON", "perhaps"),
])
def test_bad_config_exits_2_with_one_line(cli, name, value):
    cli.monkeypatch.setenv(name, value)
    code, out, err = cli("integration", "list")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {name}: ")


def test_migrate(cli):
    assert cli.settings.sqlite_path is not None
    cli.settings.sqlite_path.unlink()  # from nothing
    code, out, _ = cli("migrate")
    assert code == 0 and "up to date" in out
    assert cli.table(Integration) == []  # the schema is there
    assert cli("migrate")[0] == 0  # and a second run is a no-op


# --- users: list, passwd, disable, enable; --version; serve --help ---------------------------

def test_user_list_text_and_json(cli):
    assert cli("user", "list")[1].splitlines() == ["USERNAME                 ROLE        STATE     "
                                                   "DISPLAY NAME"]
    assert cli("user", "add", "ann", "--role", "agent", stdin="long enough pw\n")[0] == 0
    assert cli("user", "add", "bob", "--role", "admin", "--must-change-password",
               "--password-stdin", stdin="long enough pw\n")[0] == 0
    assert cli("user", "disable", "ann")[0] == 0
    code, out, _ = cli("user", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(u["username"], u["role"], u["disabled"], u["must_change_password"])
            for u in listed] == [("ann", "agent", True, False), ("bob", "admin", False, True)]
    assert {"id", "display_name", "created_at"} <= set(listed[0])
    assert "argon2" not in out and "hash" not in out
    code, out, _ = cli("user", "list")
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [
        ["ann", "agent", "disabled"], ["bob", "admin", "new"]]


def test_user_passwd_sets_the_password_and_ends_the_sessions(cli):
    assert cli("user", "add", "ann", "--role", "agent", stdin="long enough pw\n")[0] == 0
    (ann,) = cli.table(User)
    cli.run(execute_on, sa.insert(UserSession.__table__).values(
        id="s" * 64, user_id=ann["id"], csrf_token="c", created_at=utcnow(),
        last_seen_at=utcnow()))
    code, out, err = cli("user", "passwd", "ann", "--password-stdin",
                         stdin="a new long password\n")
    assert code == 0, err
    assert "a new long password" not in out + err
    (ann,) = cli.table(User)
    assert verify_password("a new long password", ann["password_hash"])
    assert ann["must_change_password"] is False
    (session,) = cli.table(UserSession)
    assert session["revoked_at"] is not None
    assert cli("user", "passwd", "ann", "--must-change-password",
               stdin="a third long password\n")[0] == 0
    assert cli.table(User)[0]["must_change_password"] is True


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["user", "passwd", "nobody"], "long enough pw\n", "error: no user 'nobody'"),
    (["user", "passwd", "ann"], "short\n", "error: password: must be 8"),
    (["user", "disable", "nobody"], "", "error: no user 'nobody'"),
    (["user", "enable", "nobody"], "", "error: no user 'nobody'"),
])
def test_user_commands_refuse_one_line(cli, argv, stdin, message):
    assert cli("user", "add", "ann", "--role", "agent", stdin="long enough pw\n")[0] == 0
    code, out, err = cli(*argv, stdin=stdin)
    assert (code, out) == (1, "")
    assert err.startswith(message) and len(err.splitlines()) == 1, err


def test_user_passwd_prompts_twice_on_a_terminal_without_echo(cli):
    assert cli("user", "add", "ann", "--role", "agent", stdin="long enough pw\n")[0] == 0
    answers = iter(["typed on a tty", "typed on a tty", "first try here", "second differs"])
    prompts: list[str] = []

    def getpass(prompt: str) -> str:  # getpass never echoes; record what was asked
        prompts.append(prompt)
        return next(answers)

    cli.monkeypatch.setattr("getpass.getpass", getpass)

    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    cli.monkeypatch.setattr(sys, "stdin", TTY())
    cli.capsys.readouterr()
    assert main(["user", "passwd", "ann"]) == 0
    assert prompts == ["Password: ", "Again: "]
    assert verify_password("typed on a tty", cli.table(User)[0]["password_hash"])
    assert main(["user", "passwd", "ann"]) == 1
    assert cli.capsys.readouterr().err == "error: passwords differ\n"
    assert verify_password("typed on a tty", cli.table(User)[0]["password_hash"])


def test_user_disable_and_enable(cli):
    assert cli("user", "add", "ann", "--role", "agent", stdin="long enough pw\n")[0] == 0
    assert cli("user", "disable", "ann")[1] == "user ann disabled; their sessions ended\n"
    assert cli.table(User)[0]["disabled"] is True
    assert cli("user", "enable", "ann")[1] == "user ann enabled\n"
    assert cli.table(User)[0]["disabled"] is False


def test_the_last_enabled_admin_cannot_be_disabled(cli):
    assert cli("user", "add", "boss", "--role", "admin", stdin="long enough pw\n")[0] == 0
    code, _, err = cli("user", "disable", "boss")
    assert (code, err) == (1, "error: boss is the last enabled admin; make another admin "
                              "first\n")
    assert cli.table(User)[0]["disabled"] is False
    # With a second admin, either may go.
    assert cli("user", "add", "deputy", "--role", "admin", stdin="long enough pw\n")[0] == 0
    assert cli("user", "disable", "boss")[0] == 0
    assert cli("user", "disable", "deputy")[0] == 1


def test_version_is_the_packages(cli):
    from importlib.metadata import version

    code, out, _ = cli("--version")
    assert (code, out) == (0, f"connector {version('handover-connector')}\n")


def test_serve_help_lists_every_setting_with_its_default_and_description(cli):
    from connector.cli.settings_help import default_text, describe

    code, out, _ = cli("serve", "--help")
    assert code == 0
    for name, field in Settings.model_fields.items():
        env = f"CONNECTOR_{name.upper()}"
        assert f"  {env}  (default: {default_text(field)})" in out, env
        assert describe(name, field), f"{env} has no description (a #: comment in settings.py)"
        first_words = " ".join(describe(name, field).split()[:4])
        assert first_words in " ".join(out.split()), env
    assert "CONNECTOR_PORT  (default: 8000)" in out
    assert "CONNECTOR_ADMIN_PASSWORD  (default: (unset))" in out


def test_erase_an_end_user(cli, channel):
    code, out, _ = cli("integration", "add", "--name", "bot", "--channel-url", channel.url,
                       "--json")
    created = json.loads(out)
    path = created["smartly_webhook_url"].removeprefix(PUBLIC)

    async def talk() -> None:
        async with running(cli.settings) as (_, client):
            for user in ("erase-me", "keep-me"):
                r = await client.post(path, json=builders.turn(user, f"words of {user}"))
                assert r.status_code == 200

    asyncio.run(talk())
    argv = ("erase", "--integration", created["id"], "--end-user", "erase-me")
    code, _, err = cli(*argv)  # not a terminal: --yes is required
    assert code == 1 and "add --yes" in err
    code, _, err = cli("erase", "--integration", "nope", "--end-user", "erase-me", "--yes")
    assert code == 1 and err == "error: --integration: no integration nope\n"
    code, out, _ = cli(*argv, "--yes")
    assert code == 0
    erased = json.loads(out)
    assert erased["pseudonym"].startswith("erased-") and erased["messages"] == 2
    assert "erase-me" not in out
    texts = {m["text"] for m in cli.table(Message)}
    assert texts == {"[erased]", "words of keep-me", "Hi!"}
    (event,) = [e for e in cli.table(AuditEvent) if e["action"] == "end_user.erased"]
    assert (event["actor"], event["address"]) == ("cli", "local")
