"""The audit trail through the real app: each admin and supervisor action recorded once,
in its own transaction, with who, from where and what changed, never a secret; and
`GET /api/audit`'s filters, paging and retention."""

from __future__ import annotations

import datetime as dt
import json
from contextlib import AsyncExitStack
from typing import Any

import pytest
import sqlalchemy as sa

from connector.domain import audit, audit_log
from connector.settings import ConfigError, Settings, load_settings
from connector.storage.audit_models import AuditEvent
from connector.storage.db import utcnow
from tests import builders
from tests.conftest import PASSWORD, add_bot, add_user, sign_in
from tests.fakes import Reply
from tests.helpers import execute, ok, rows, wait_settled

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(each_dialect: Settings) -> Settings:
    return each_dialect


async def events(app: Any, action: str | None = None) -> list[dict[str, Any]]:
    crit = [AuditEvent.__table__.c.action == action] if action else []
    return await rows(app, AuditEvent, *crit)


def one(found: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(found) == 1, found
    return found[0]


def no_secret(row: dict[str, Any], *secrets: str) -> None:
    text = json.dumps(row, default=str)
    for secret in secrets:
        assert secret not in text


async def test_user_actions_recorded_once_with_actor_address_and_no_password(app):
    await add_user(app, "root", "admin")
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        made = await ok(admin.post("/api/users", json={
            "username": "ann", "password": "first secret pw", "role": "agent"}))
        uid = made["id"]
        await ok(admin.patch(f"/api/users/{uid}", json={"role": "supervisor"}))
        await ok(admin.patch(f"/api/users/{uid}", json={"disabled": True}))
        await ok(admin.patch(f"/api/users/{uid}", json={"disabled": False}))
        await ok(admin.patch(f"/api/users/{uid}", json={"password": "second secret pw"}))
        await ok(admin.patch(f"/api/users/{uid}", json={"max_concurrent": 5}))
        # Refused (one may not demote oneself): nothing recorded.
        me = one(await events(app, "auth.sign_in"))["actor_id"]
        r = await admin.patch(f"/api/users/{me}", json={"role": "agent"})
        assert r.status_code == 409

    created = one(await events(app, "user.created"))
    assert (created["actor"], created["role"], created["actor_id"]) == ("root", "admin", me)
    assert created["address"] == "127.0.0.1" and created["request_id"]
    assert (created["target_type"], created["target_id"]) == ("user", str(uid))
    assert created["changes"]["username"] == {"before": None, "after": "ann"}
    assert one(await events(app, "user.role_changed"))["changes"] == {
        "role": {"before": "agent", "after": "supervisor"}}
    assert one(await events(app, "user.disabled"))["changes"] == {
        "disabled": {"before": False, "after": True}}
    one(await events(app, "user.enabled"))
    assert one(await events(app, "user.password_reset"))["changes"] == {
        "password": {"changed": True}}
    assert one(await events(app, "user.updated"))["changes"] == {
        "max_concurrent": {"before": None, "after": 5}}
    for row in await events(app):
        no_secret(row, "first secret pw", "second secret pw", PASSWORD)
    assert len(await events(app)) == 7


async def test_sign_ins_and_failures_recorded_without_the_password(app, client):
    user = await add_user(app, "bob", "agent")
    r = await client.post("/api/login", json={"username": "bob", "password": "wrong guess 1"})
    assert r.status_code == 401
    r = await client.post("/api/login", json={"username": "nobody", "password": "guess 2"})
    assert r.status_code == 401
    r = await client.post("/api/login", json={"username": "bob", "password": PASSWORD},
                          headers={"X-Request-Id": "req-123"})
    assert r.status_code == 200
    failed = await events(app, "auth.sign_in_failed")
    assert [(f["actor"], f["actor_id"], f["target_id"]) for f in failed] == [
        ("bob", None, str(user.id)), ("nobody", None, None)]
    signed = one(await events(app, "auth.sign_in"))
    assert (signed["actor"], signed["actor_id"], signed["role"]) == ("bob", user.id, "agent")
    assert signed["request_id"] == "req-123" and signed["address"] == "127.0.0.1"
    for row in await events(app):
        no_secret(row, "wrong guess 1", "guess 2", PASSWORD)


async def test_integration_actions_never_record_a_key_token_or_secret(app, channel):
    await add_user(app, "root", "admin")
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        made = await ok(admin.post("/api/integrations", json={
            "name": "Shop", "channel_url": channel.url, "verify_token": "verify-tok-1"}))
        iid = made["id"]
        await ok(admin.patch(f"/api/integrations/{iid}", json={
            "name": "Shop 2", "verify_token": "verify-tok-2"}))
        rotated = await ok(admin.post(f"/api/integrations/{iid}/rotate-key"))
        signed = await ok(admin.post(f"/api/integrations/{iid}/rotate-signing-secret"))
    secrets = [made["key"], made["signing_secret"], rotated["key"], signed["signing_secret"],
               "verify-tok-1", "verify-tok-2"]
    created = one(await events(app, "integration.created"))
    assert created["changes"]["name"] == {"before": None, "after": "Shop"}
    assert created["changes"]["verify_token"] == {"changed": True}
    updated = one(await events(app, "integration.updated"))
    assert updated["changes"] == {"name": {"before": "Shop", "after": "Shop 2"},
                                  "verify_token": {"changed": True}}
    assert one(await events(app, "integration.key_rotated"))["changes"]["key"] == {
        "changed": True}
    one(await events(app, "integration.signing_secret_rotated"))
    for row in await events(app):
        no_secret(row, *secrets)


async def test_supervisor_assignment_transfer_and_resend(app, client, channel):
    bot = await add_bot(app, channel.url)
    await add_user(app, "sue", "supervisor")
    await add_user(app, "ann", "agent")
    await add_user(app, "amy", "agent")
    r = await client.post(bot.smartly_path, json=builders.escalation("u1"))
    assert r.status_code == 200
    async with AsyncExitStack() as stack:
        sue = await sign_in(stack, app, "sue")
        ann = await sign_in(stack, app, "ann")
        (ticket,) = (await ok(sue.get("/api/tickets")))["tickets"]
        tid = ticket["id"]
        await ok(sue.post(f"/api/tickets/{tid}/transfer", json={"to": "ann"}))
        channel.default = Reply(400)
        sent = await ok(ann.post(f"/api/tickets/{tid}/messages", json={"text": "hi"}))
        await wait_settled(app, 1)
        await ok(sue.post(f"/api/messages/{sent['id']}/resend"))
        await ok(sue.post(f"/api/tickets/{tid}/transfer", json={"to": "amy"}))
    assigned = one(await events(app, "ticket.assigned_by_supervisor"))
    assert (assigned["actor"], assigned["target_id"]) == ("sue", str(tid))
    assert assigned["changes"]["assignee"] == {"before": None, "after": "ann"}
    moved = one(await events(app, "ticket.transferred"))
    assert moved["changes"]["assignee"] == {"before": "ann", "after": "amy"}
    resent = one(await events(app, "delivery.resent"))
    assert (resent["target_type"], resent["target_id"]) == ("message", str(sent["id"]))


async def test_a_rolled_back_action_leaves_no_audit_row(app):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with app.state.store.transaction() as tx:
            await audit.record(tx, audit.CLI, "user.created", "user", 1)
            raise Boom

    def failing(tx: Any) -> None:
        audit.record_sync(tx, audit.CLI, "user.created", "user", 2)
        raise Boom

    with pytest.raises(Boom):
        await app.state.store.write(failing)
    assert await events(app) == []


async def test_redact_never_lets_a_secret_through():
    assert audit.redact({"api_token": {"before": "a", "after": "b"}, "name": 1}) == {
        "api_token": {"changed": True}, "name": 1}
    with pytest.raises(ValueError):
        audit._row(audit.CLI, "no.such_action", None, None, None)


async def _seed(app: Any) -> None:
    now = utcnow()
    table = AuditEvent.__table__
    values = [
        {"at": now - dt.timedelta(days=3), "actor": "root", "action": "user.created",
         "target_type": "user", "target_id": "7"},
        {"at": now - dt.timedelta(days=2), "actor": "cli", "address": "local",
         "action": "integration.created", "target_type": "integration", "target_id": "abc"},
        {"at": now - dt.timedelta(days=1), "actor": "root", "action": "integration.deleted",
         "target_type": "integration", "target_id": "abc"},
        {"at": now, "actor": "root", "action": "user.role_changed", "target_type": "user",
         "target_id": "7"},
    ]
    await execute(app, sa.insert(table).values(values))


async def test_get_audit_filters_and_pages_newest_first(app):
    await _seed(app)
    await add_user(app, "root", "admin")
    await add_user(app, "sue", "supervisor")
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        sue = await sign_in(stack, app, "sue")
        assert (await sue.get("/api/audit")).status_code == 403

        async def actions(**params: Any) -> list[str]:
            out = await ok(admin.get("/api/audit", params=params))
            return [e["action"] for e in out["events"]]

        everything = await ok(admin.get("/api/audit"))
        assert [e["action"] for e in everything["events"]][:2] == ["auth.sign_in"] * 2
        assert everything["next_before"] is None
        assert await actions(action="integration") == ["integration.deleted",
                                                       "integration.created"]
        assert await actions(action="user.created") == ["user.created"]
        assert await actions(actor="cli") == ["integration.created"]
        assert await actions(target="user:7") == ["user.role_changed", "user.created"]
        assert await actions(target="integration") == ["integration.deleted",
                                                       "integration.created"]
        day = (utcnow() - dt.timedelta(days=2)).date().isoformat()
        assert await actions(**{"from": day, "to": day}) == ["integration.created"]

        first = await ok(admin.get("/api/audit", params={"limit": 2, "actor": "root"}))
        assert [e["action"] for e in first["events"]] == ["auth.sign_in", "user.role_changed"]
        second = await ok(admin.get("/api/audit", params={
            "limit": 2, "actor": "root", "before": first["next_before"]}))
        assert [e["action"] for e in second["events"]] == ["integration.deleted",
                                                           "user.created"]
        assert second["next_before"] is None
        row = second["events"][1]
        assert row["actor"] == {"id": None, "username": "root", "role": None}
        assert row["target"] == {"type": "user", "id": "7"}

        for bad in ({"action": "User%"}, {"from": "yesterday"}, {"limit": "0"},
                    {"before": "x"}, {"from": "2026-01-02", "to": "2026-01-01"},
                    {"target": "user:\x00"}, {"to": ""}, {"action": ""}):
            r = await admin.get("/api/audit", params=bad)
            assert r.status_code == 422, (bad, r.text)


async def test_retention_prunes_old_events_in_batches(app):
    await _seed(app)
    cutoff = utcnow() - dt.timedelta(hours=36)
    deleted = await audit_log.prune_expired(app.state.store.begin, cutoff, batch=1)
    assert deleted == 2
    assert [e["action"] for e in await events(app)] == ["integration.deleted",
                                                       "user.role_changed"]


def test_retention_setting_is_validated(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_DAYS"):
        load_settings(database_url=url, audit_retention_days=0)
    assert load_settings(database_url=url).audit_retention_days == 365


async def test_event_webhook_changes_recorded_without_their_secrets(app, channel):
    await add_user(app, "root", "admin")
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        made = await ok(admin.post("/api/webhooks", json={
            "url": channel.url, "events": ["ticket.resolved"]}))
        wid = made["id"]
        await ok(admin.patch(f"/api/webhooks/{wid}", json={"description": "CRM"}))
        rotated = await ok(admin.post(f"/api/webhooks/{wid}/rotate-secret"))
        await ok(admin.delete(f"/api/webhooks/{wid}"))
    found = [e for e in await events(app) if e["action"].startswith("webhook.")]
    assert [e["action"] for e in found] == ["webhook.created", "webhook.updated",
                                            "webhook.secret_rotated", "webhook.deleted"]
    assert all(e["target_id"] == str(wid) for e in found)
    assert found[1]["changes"] == {"description": {"before": None, "after": "CRM"}}
    assert found[2]["changes"]["secret"] == {"changed": True}
    for row in found:
        no_secret(row, made["secret"], rotated["secret"])
