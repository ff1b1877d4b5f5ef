"""Replies to a Chatlayer Webhook channel are signed (Standard Webhooks) with the
integration's secret, two signatures during a rotation's grace; an address the
outbound rules refuse fails the delivery for good, with a clear error."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from connector.outbound import signing
from tests.conftest import add_user, fresh_database, make_settings, sign_in
from tests.fakes import FakeChannel, Reply
from tests.helpers import ok, running, wait_settled

pytestmark = pytest.mark.anyio


async def _ticket(client: Any, created: dict[str, Any], user: str = "u-1") -> int:
    from tests import builders

    path = created["smartly_webhook_url"].split("testserver", 1)[1]
    r = await client.post(path, json=builders.turn(user, "help", need_help=True))
    assert r.status_code == 200, r.text
    return int(r.json()["ticket_id"])


async def _reply(admin: Any, ticket: int, text: str) -> None:
    await ok(admin.post(f"/api/tickets/{ticket}/claim"))
    await ok(admin.post(f"/api/tickets/{ticket}/messages", json={"text": text}))


async def test_replies_are_signed_and_rotation_signs_twice(
        tmp_path: Path, migrated_db: Path, channel: FakeChannel) -> None:
    fresh_database(migrated_db, tmp_path)
    async with running(make_settings(tmp_path)) as (app, client), AsyncExitStack() as stack:
        await add_user(app, "boss", "admin")
        admin = await sign_in(stack, app, "boss")
        created = await ok(admin.post("/api/integrations", json={
            "name": "bot", "channel_url": channel.url}))
        secret = created["signing_secret"]
        assert secret.startswith("whsec_")
        shown = await ok(admin.get(f"/api/integrations/{created['id']}"))
        assert "signing_secret" not in shown and shown["signing_secret_rotated_at"] is None
        listed = await ok(admin.get("/api/integrations"))
        assert secret not in str(listed)

        channel.script = [Reply(503)]  # the first attempt is retried: same webhook-id
        ticket = await _ticket(client, created)
        await _reply(admin, ticket, "hello")
        await wait_settled(app, 1)
        first, retried = channel.received
        assert first.headers["webhook-id"] == retried.headers["webhook-id"] == (
            "msg_" + first.headers["idempotency-key"])
        for got in (first, retried):
            assert signing.verify(secret, got.headers, got.raw)
            assert got.body["message"] == {"text": "hello"}  # Chatlayer's shape, unchanged
            assert len(got.headers["webhook-signature"].split()) == 1

        rotated = await ok(admin.post(
            f"/api/integrations/{created['id']}/rotate-signing-secret",
            json={"grace_seconds": 3600}))
        new = rotated["signing_secret"]
        assert new != secret and rotated["previous_signing_secret_valid_until"]
        assert rotated["signing_secret_rotated_at"]
        app.state.integrations.forget(created["id"])
        await ok(admin.post(f"/api/tickets/{ticket}/messages", json={"text": "again"}))
        await wait_settled(app, 2)
        last = channel.received[-1]
        assert len(last.headers["webhook-signature"].split()) == 2
        assert signing.verify(new, last.headers, last.raw)
        assert signing.verify(secret, last.headers, last.raw)  # in its grace

        await ok(admin.post(f"/api/integrations/{created['id']}/rotate-signing-secret",
                            json={"grace_seconds": 0}))
        newest = (await ok(admin.get(f"/api/integrations/{created['id']}")))
        assert newest["previous_signing_secret_valid_until"] is not None
        r = await admin.post("/api/integrations/nope/rotate-signing-secret")
        assert r.status_code == 404


async def test_a_refused_address_fails_the_delivery_for_good(
        tmp_path: Path, migrated_db: Path, channel: FakeChannel) -> None:
    """Without the suite's allow list, a channel on loopback is refused: at save time
    (422 naming the field), and at send time (failed, never retried, the error says why)."""
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path, outbound_allow_networks=[])
    async with running(settings) as (app, client), AsyncExitStack() as stack:
        await add_user(app, "boss", "admin")
        admin = await sign_in(stack, app, "boss")
        for url in (channel.url, "http://169.254.169.254/latest", "http://[::ffff:10.0.0.1]/",
                    "http://localhost:9/x"):
            r = await admin.post("/api/integrations", json={"name": "bot", "channel_url": url})
            assert r.status_code == 422, r.text
            assert r.json()["fields"][0]["field"] == "channel_url"
            assert r.json()["fields"][0]["message"].startswith("refused: ")
        # Saved before the allow list was emptied (or re-pointed since): refused at send.
        from connector.accounts import integrations

        async with app.state.store.transaction() as tx:
            made = await integrations.create(tx.conn, name="old", channel_url=channel.url)
        created = integrations.describe(made.integration, "http://testserver", made.key)
        ticket = await _ticket(client, created)
        await _reply(admin, ticket, "hello")
        [delivery] = await wait_settled(app, 1)
        assert delivery["state"] == "failed" and delivery["attempts"] == 1
        assert delivery["last_error"] == "refused: 127.0.0.1 is a loopback address"
        assert channel.received == []
        r = await admin.post(f"/api/integrations/{made.integration.id}/test",
                             json={"recipient": "u-1", "text": "ping"})
        assert r.json()["ok"] is False and channel.received == []
