"""Integrations disabled, enabled again and deleted, through the real app on SQLite and
PostgreSQL: a disabled one's webhooks answer 403 and store nothing, its replies wait;
deletion refused while it has conversations unless they go too; each audited."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest
import sqlalchemy as sa

from connector.settings import Settings
from connector.storage.audit_models import AuditEvent
from connector.storage.models import Conversation, Integration, Message
from tests import builders
from tests.conftest import add_bot, add_user, sign_in
from tests.helpers import counts, deliveries, execute, ok, rows, wait_settled, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(each_dialect: Settings) -> Settings:
    return each_dialect


async def actions(app: Any) -> list[str]:
    return [e["action"] for e in await rows(app, AuditEvent)
            if not e["action"].startswith("auth.")]


async def test_disabled_refuses_every_webhook_storing_nothing_and_enable_again(
        app, client, channel):
    bot = await add_bot(app, channel.url)
    await add_user(app, "root", "admin")
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        out = await ok(admin.post(f"/api/integrations/{bot.id}/disable"))
        assert out["disabled"] is True
        before = await counts(app)
        for path, body in ((bot.smartly_path, builders.escalation("u1")),
                           (bot.chatlayer_path, builders.chatlayer("u1", bot.verify_token))):
            r = await client.post(path, json=body)
            assert r.status_code == 403, r.text
            assert r.json()["error"] == "integration_disabled"
        # A wrong key still gets 401: only the integration's caller learns it is disabled.
        r = await client.post(f"/hooks/smartly/{bot.id}?key=wrong",
                              json=builders.escalation("u1"))
        assert r.status_code == 401
        assert await counts(app) == before
        again = await ok(admin.post(f"/api/integrations/{bot.id}/disable"))  # no change
        assert again["disabled"] is True
        assert (await ok(admin.get(f"/api/integrations/{bot.id}")))["disabled"] is True

        out = await ok(admin.post(f"/api/integrations/{bot.id}/enable"))
        assert out["disabled"] is False
        r = await client.post(bot.smartly_path, json=builders.escalation("u1"))
        assert r.status_code == 200, r.text
        assert (await admin.post("/api/integrations/nope/disable")).status_code == 404
    assert await actions(app) == ["integration.disabled", "integration.enabled"]
    (disabled, _) = [e for e in await rows(app, AuditEvent)
                     if e["action"].startswith("integration.")]
    assert disabled["changes"] == {"disabled": {"before": False, "after": True}}
    assert (disabled["actor"], disabled["target_id"]) == ("root", bot.id)


async def test_a_disable_made_elsewhere_holds_here_within_the_cache_time(app, client, channel):
    bot = await add_bot(app, channel.url)
    r = await client.post(bot.smartly_path, json=builders.escalation("u1"))
    assert r.status_code == 200  # cached now
    table = Integration.__table__
    await execute(app, sa.update(table).where(table.c.id == bot.id).values(disabled=True))

    async def refused() -> bool:
        r = await client.post(bot.smartly_path, json=builders.turn("u2", "hi"))
        return r.status_code == 403

    await wait_until(refused, what="the disable to reach this instance")


async def test_replies_of_a_disabled_integration_wait_until_it_is_enabled(
        app, client, channel):
    bot = await add_bot(app, channel.url)
    await add_user(app, "root", "admin")
    await add_user(app, "ann", "agent")
    r = await client.post(bot.smartly_path, json=builders.escalation("u1"))
    tid = r.json()["ticket_id"]
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        ann = await sign_in(stack, app, "ann")
        await ok(ann.post(f"/api/tickets/{tid}/claim"))
        await ok(admin.post(f"/api/integrations/{bot.id}/disable"))
        await ok(ann.post(f"/api/tickets/{tid}/messages", json={"text": "paused reply"}))
        (queued,) = await deliveries(app)
        assert queued["state"] == "queued" and queued["lease_until"] is None  # not handed
        assert await app.state.delivery._claim_due() == []  # polling passes it by
        await ok(admin.post(f"/api/integrations/{bot.id}/enable"))
        (sent,) = await wait_settled(app, 1)
    assert sent["state"] == "delivered"
    assert [r.body["message"]["text"] for r in channel.delivered] == ["paused reply"]


async def _conversation(client: Any, bot: Any) -> int:
    r = await client.post(bot.smartly_path, json=builders.turn("u1", "zanzibar parcel",
                                                               need_help=True))
    assert r.status_code == 200, r.text
    return int(r.json()["ticket_id"])


async def test_delete_without_conversations_or_refused_while_it_has_some(
        app, client, channel):
    empty = await add_bot(app, channel.url, name="empty")
    busy = await add_bot(app, channel.url, name="busy")
    await _conversation(client, busy)
    await add_user(app, "root", "admin")
    await add_user(app, "sue", "supervisor")
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        sue = await sign_in(stack, app, "sue")
        assert (await sue.delete(f"/api/integrations/{empty.id}")).status_code == 403
        out = await ok(admin.delete(f"/api/integrations/{empty.id}"))
        assert out["deleted"] == {"id": empty.id, "name": "empty", "conversations": 0}
        assert (await admin.get(f"/api/integrations/{empty.id}")).status_code == 404
        assert (await admin.delete(f"/api/integrations/{empty.id}")).status_code == 404
        before = await counts(app)
        r = await admin.delete(f"/api/integrations/{busy.id}")
        assert r.status_code == 409 and r.json()["conversations"] == 1
        r = await admin.delete(f"/api/integrations/{busy.id}?with_conversations=maybe")
        assert r.status_code == 422
        assert await counts(app) == before
        assert (await ok(admin.get(f"/api/integrations/{busy.id}")))["disabled"] is False
    r = await client.post(empty.smartly_path, json=builders.turn("u1", "hi"))
    assert r.status_code == 401
    deleted = [e for e in await rows(app, AuditEvent) if e["action"] == "integration.deleted"]
    assert [(e["target_id"], e["changes"]["name"]) for e in deleted] == [
        (empty.id, {"before": "empty"})]


async def test_delete_with_conversations_removes_all_of_them(app, client, channel):
    bot = await add_bot(app, channel.url)
    other = await add_bot(app, channel.url, name="other")
    await add_user(app, "root", "admin")
    await add_user(app, "ann", "agent")
    tid = await _conversation(client, bot)
    r = await client.post(bot.smartly_path, json=builders.turn("u2", "zanzibar bot only"))
    assert r.status_code == 200
    r = await client.post(other.smartly_path, json=builders.turn("u3", "kept", need_help=True))
    assert r.status_code == 200
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        ann = await sign_in(stack, app, "ann")
        await ok(ann.post(f"/api/tickets/{tid}/claim"))
        await ok(ann.post(f"/api/tickets/{tid}/messages", json={"text": "zanzibar"}))
        await wait_settled(app, 1)
        before = await counts(app)
        out = await ok(admin.delete(f"/api/integrations/{bot.id}",
                                    params={"with_conversations": "true"}))
        assert out["deleted"]["conversations"] == 2
        found = await ok(admin.get("/api/search", params={"q": "zanzibar"}))
        assert found["results"] == []
    after = await counts(app)
    for table in ("conversation", "ticket", "inbound_event"):
        assert after[table] == 1, (table, before, after)  # the other integration's
    assert after["delivery"] == after["delivery_attempt"] == 0
    (kept,) = await rows(app, Conversation)
    assert kept["integration_id"] == other.id
    assert {m["conversation_id"] for m in await rows(app, Message)} == {kept["id"]}
    if app.state.settings.is_sqlite:
        async with app.state.store.read() as conn:
            fts = await conn.execute(sa.text(
                "SELECT count(*) FROM message_fts WHERE message_fts MATCH 'zanzibar'"))
            assert fts.scalar_one() == 0
    (deleted,) = [e for e in await rows(app, AuditEvent) if e["action"] == "integration.deleted"]
    assert deleted["changes"]["conversations"] == {"before": 2}
