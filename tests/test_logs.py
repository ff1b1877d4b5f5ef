"""Logs: one line per request and per delivery attempt, text or JSON, never a secret."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from connector.domain import tickets
from connector.logs import accept_request_id, escape, redact, setup_logging
from connector.settings import Settings
from tests import builders
from tests.conftest import PASSWORD, add_bot, add_user, fresh_database, make_settings
from tests.fakes import FakeChannel
from tests.helpers import actor, running, wait_settled

pytestmark = pytest.mark.anyio

_TOUCHED = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic")


@contextmanager
def configured(settings: Settings) -> Iterator[None]:
    """`setup_logging` as `connector serve` does it, undone afterwards."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate,
                    logging.getLogger(name).disabled, logging.getLogger(name).level)
             for name in _TOUCHED}
    setup_logging(settings)
    try:
        yield
    finally:
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for name, (handlers, propagate, disabled, lvl) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
            logger.setLevel(lvl)


@pytest.mark.parametrize(("line", "secret"), [
    ("GET /hooks/smartly/abc?key=s3cr3tKEY&x=1", "s3cr3tKEY"),
    ('body {"verifyToken": "tok-123", "message": {}}', "tok-123"),
    ("verify_token=tok-456 rest", "tok-456"),
    ("password: hunter2hunter2", "hunter2hunter2"),
    ("PASSWORD='swordfish99'", "swordfish99"),
    ("Cookie: connector_session=abcdef0123", "abcdef0123"),
    ("csrf_token=zzz999 next", "zzz999"),
    ("api_key = 0xDEADBEEF;", "0xDEADBEEF"),
    ("secret:topsecretvalue", "topsecretvalue"),
    ("login failed: password='correct horse battery' user=bob", "horse battery"),
    ('{"verifyToken": "two words", "text": "hi"}', "two words"),
])
def test_redact_masks_keys_tokens_and_passwords(line, secret):
    clean = redact(line)
    assert secret not in clean
    assert "[redacted]" in clean


def test_redact_leaves_ordinary_lines_alone():
    line = "127.0.0.1 POST /hooks/smartly/0a1b2c 200 3.1ms"
    assert redact(line) == line
    # Only the secret goes: what follows it on the line stays readable.
    assert redact("login failed: password='a b' user=bob") == (
        "login failed: password=[redacted] user=bob")


async def run_a_handover(tmp_path: Any, migrated_db: Any, settings: Settings,
                         channel: FakeChannel) -> dict[str, str]:
    """Webhooks in, a reply out, and an error logged; returns the secrets involved."""
    async with running(settings) as (app, client):
        channel_secret = "chan-secret-42abc"
        bot = await add_bot(app, f"{channel.url}?token={channel_secret}")
        r = await client.post(bot.smartly_path, json=builders.turn("u-1", "help", need_help=True))
        assert r.status_code == 200
        wrong = await client.post(bot.smartly_path + "x", json=builders.turn())
        assert wrong.status_code == 401
        r = await client.post(bot.chatlayer_path,
                              json=builders.chatlayer("u-1", bot.verify_token))
        assert r.status_code == 200
        agent = actor(await add_user(app, "alice"))
        ticket_id = (await client.post(bot.smartly_path, json=builders.escalation("u-1"))
                     ).json()["ticket_id"]
        async with app.state.store.transaction() as tx:
            await tickets.claim(tx, ticket_id, agent)
        async with app.state.store.transaction() as tx:
            await tickets.reply(tx, ticket_id, agent, "hello from alice")
        await wait_settled(app, 1)
        try:
            raise RuntimeError(f"login failed: password={PASSWORD!r} token={bot.verify_token}")
        except RuntimeError:
            logging.getLogger("connector.test").exception("something broke key=%s", bot.key)
    return {"key": bot.key, "verify_token": bot.verify_token, "channel": channel_secret,
            "password": PASSWORD, "wrong_key": bot.key + "x"}


def check_secrets_absent(output: str, secrets: dict[str, str]) -> None:
    for name, secret in secrets.items():
        assert secret not in output, f"{name} leaked into the logs"
    # The password has spaces: no fragment of it either.
    assert "horse" not in output


async def test_text_logs_have_request_and_delivery_lines_and_no_secret(
        tmp_path, migrated_db, channel, capsys):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path)
    with configured(settings):
        secrets = await run_a_handover(tmp_path, migrated_db, settings, channel)
    output = capsys.readouterr().err
    lines = output.splitlines()
    access = [line for line in lines if " connector.access: " in line]
    assert any("POST /hooks/smartly/" in line and " 200 " in line for line in access)
    assert any("POST /hooks/smartly/" in line and " 401 " in line for line in access)
    assert any("POST /hooks/chatlayer/" in line for line in access)
    deliveries = [line for line in lines if " connector.delivery: " in line]
    assert len(deliveries) == 1
    assert "attempt=1 outcome=delivered status=200" in deliveries[0]
    assert "Traceback" in output and "RuntimeError" in output  # the error was logged...
    check_secrets_absent(output, secrets)  # ...with its secrets masked


async def test_json_logs_one_object_per_line_and_no_secret(tmp_path, migrated_db, channel,
                                                           capsys):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path, log_json=True)
    with configured(settings):
        secrets = await run_a_handover(tmp_path, migrated_db, settings, channel)
    output = capsys.readouterr().err
    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert entries
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
    access = [e for e in entries if e["logger"] == "connector.access"]
    assert any("/hooks/smartly/" in e["message"] and e["level"] == "info" for e in access)
    assert [e for e in entries if e["logger"] == "connector.delivery"]
    (error,) = [e for e in entries if e["logger"] == "connector.test"]
    assert error["level"] == "error" and "RuntimeError" in error["exception"]
    check_secrets_absent(output, secrets)


def test_uvicorn_access_log_is_replaced_by_ours(tmp_path):
    # Uvicorn's own access line prints the query string (the webhook key).
    with configured(make_settings(tmp_path)):
        assert logging.getLogger("uvicorn.access").disabled
        root = logging.getLogger()
        assert len(root.handlers) == 1 and root.level == logging.INFO


def test_log_level_setting_applies(tmp_path, capsys):
    with configured(make_settings(tmp_path, log_level="warning")):
        logging.getLogger("connector.x").info("quiet please")
        logging.getLogger("connector.x").warning("loud enough")
    err = capsys.readouterr().err
    assert "loud enough" in err and "quiet please" not in err


FORGED = "2026-11-29 13:00:00,000 ERROR connector: FORGED"


async def test_a_request_cannot_forge_a_log_line(tmp_path, migrated_db, capsys):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path)
    with configured(settings):
        async with running(settings) as (_, client):
            for sep in ("%0A", "%0D", "%0D%0A", "%E2%80%A8", "%1B[2K%0D"):
                r = await client.post(f"/hooks/smartly/abc{sep}{FORGED}", json={})
                assert r.status_code == 401
            try:
                raise ValueError(f"bad input\n{FORGED} from a traceback")
            except ValueError:
                logging.getLogger("connector.test").exception("failed on %s", f"x\r\n{FORGED}")
    output = capsys.readouterr().err
    assert "FORGED" in output  # the values were logged...
    for line in output.splitlines():  # ...but never at the start of a line of their own
        assert not line.startswith("2026-11-29 13:00:00"), line
        assert "\x1b" not in line and "\r" not in line and "\u2028" not in line
    access = [line for line in output.splitlines() if " connector.access: " in line]
    assert sum("FORGED" in line for line in access) == 5
    assert "abc\\n2026-11-29 13:00:00" in output
    # Every line of the traceback is marked as belonging to the record above it.
    trace = output[output.index("failed on"):].splitlines()[1:]
    assert trace and all(line.startswith("  | ") for line in trace[:trace.index(
        next(line for line in trace if "ValueError" in line)) + 1])


@pytest.mark.parametrize(("text", "escaped"), [
    ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("\x1b[31mred", "\\x1b[31mred"),
    ("tab\there", "tab\\there"), ("del\x7f", "del\\x7f"), ("nel\x85", "nel\\x85"),
    ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"), ("café ✓", "café ✓"),
])
def test_escape_writes_every_control_character_as_an_escape(text, escaped):
    assert escape(text) == escaped


@pytest.mark.parametrize(("sent", "kept"), [
    (None, False), ("proxy-id_1.2", True), ("x" * 64, True), ("x" * 65, False),
    ("bad id", False), ("evil\\nline", False), ("caf\u00e9", False), ("", False),
])
async def test_every_line_of_a_request_carries_its_id_also_answered_as_a_header(
        tmp_path, migrated_db, capsys, sent, kept):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path)
    headers = {} if sent is None else {"X-Request-Id": sent.encode("utf-8")}
    with configured(settings):
        async with running(settings) as (_, client):
            r = await client.post("/hooks/smartly/nope?key=s3cr3tKEY", json={},
                                  headers=headers)
            other = await client.get("/healthz")
    rid = r.headers["x-request-id"]
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", rid)
    assert (rid == sent) is kept
    assert other.headers["x-request-id"] not in (rid, sent)  # one per request
    lines = [line for line in capsys.readouterr().err.splitlines()
             if " connector.access: " in line and "/hooks/smartly/nope" in line]
    assert len(lines) == 1 and lines[0].endswith(f" request_id={rid}"), lines
    assert "s3cr3tKEY" not in lines[0]


async def test_json_lines_carry_the_request_id_and_lines_outside_requests_none(
        tmp_path, migrated_db, capsys):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path, log_json=True)
    with configured(settings):
        async with running(settings) as (_, client):
            r = await client.get("/healthz", headers={"X-Request-Id": "from-the-proxy"})
        logging.getLogger("connector.test").warning("outside any request")
    entries = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    (access,) = [e for e in entries if e["logger"] == "connector.access"]
    assert access["request_id"] == r.headers["x-request-id"] == "from-the-proxy"
    (outside,) = [e for e in entries if e["message"] == "outside any request"]
    assert "request_id" not in outside


def test_new_request_ids_are_random_and_differ_in_a_forked_child():
    """New ids come from a generator seeded per process; a forked child reseeds it, so
    it never repeats the ids its parent hands out next."""
    ids = {accept_request_id(None) for _ in range(1000)}
    assert len(ids) == 1000 and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, accept_request_id(None).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{16}", child)
    assert child != accept_request_id(None)
