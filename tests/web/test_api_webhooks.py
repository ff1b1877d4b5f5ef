"""Event webhooks through the real app, on SQLite and on PostgreSQL: the admin API
(secrets shown once, never in a GET; refusals naming the field; admins only) and every
event emitted once per change, from a Smartly handover to its resolution, received by a
real HTTP server (tests/fakes.py) and checked with an independent signature check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import anyio
import httpx
import pytest

from connector.storage.webhook_models import WebhookDelivery
from tests import builders
from tests.conftest import Bot, on_each_dialect, signed_in_staff
from tests.fakes import FakeChannel, Received
from tests.helpers import ok, rows, wait_until

pytestmark = pytest.mark.anyio

ALL = ["ticket.created", "ticket.assigned", "ticket.requeued", "ticket.resolved", "ticket.rated",
       "message.created"]


settings = on_each_dialect()
staff = signed_in_staff(("alice", "agent"), ("sam", "supervisor"), ("root", "admin"))


def verified(secret: str, got: Received) -> bool:
    """The Standard Webhooks check, written here from the specification: the key is the
    base64 after `whsec_`; the content signed is `{id}.{timestamp}.{body}`; any of the
    space-separated `v1,` signatures may match."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = (f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}."
               ).encode() + got.raw
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(sig.startswith("v1,") and hmac.compare_digest(sig[3:], expected)
               for sig in got.headers["webhook-signature"].split(" "))


async def subscribe(admin: httpx.AsyncClient, url: str, events: list[str] = ALL,
                    ) -> dict[str, Any]:
    r = await admin.post("/api/webhooks", json={"url": url, "events": events,
                                                "description": "CRM"})
    assert r.status_code == 201, r.text
    return r.json()


def events_of(receiver: FakeChannel) -> list[dict[str, Any]]:
    return [r.body for r in receiver.delivered]


async def received(receiver: FakeChannel, count: int) -> list[Received]:
    return await anyio.to_thread.run_sync(receiver.wait_delivered, count)


async def test_the_api_shows_the_secret_once_and_refuses_what_is_wrong(
        app: Any, staff: dict[str, httpx.AsyncClient], receiver: FakeChannel) -> None:
    admin = staff["root"]
    created = await subscribe(admin, receiver.url, ["ticket.resolved"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["ticket.resolved"] and created["disabled"] is False
    wid = created["id"]
    listed = await ok(admin.get("/api/webhooks"))
    one = await ok(admin.get(f"/api/webhooks/{wid}"))
    for shown in (listed, one, await ok(admin.get(f"/api/webhooks/{wid}/deliveries"))):
        assert created["secret"] not in json.dumps(shown)
        assert "secret" not in shown
    assert listed["webhooks"] == [one]

    r = await admin.post("/api/webhooks", json={"url": receiver.url,
                                                "events": ["ticket.resolved", "ticket.nope"]})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "events.1", r.text
    r = await admin.post("/api/webhooks", json={"url": "ftp://example.com/x",
                                                "events": ["ticket.created"]})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "url", r.text
    r = await admin.post("/api/webhooks", json={"url": "http://169.254.169.254/latest",
                                                "events": ["ticket.created"]})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "url", r.text
    r = await admin.post("/api/webhooks", json={"url": receiver.url, "events": []})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "events", r.text

    patched = await ok(admin.patch(f"/api/webhooks/{wid}", json={
        "events": ["message.created", "ticket.created"], "description": None}))
    assert patched["events"] == ["message.created", "ticket.created"]
    assert patched["description"] is None

    rotated = await ok(admin.post(f"/api/webhooks/{wid}/rotate-secret",
                                  json={"grace_seconds": 60}))
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    assert "secret" not in await ok(admin.get(f"/api/webhooks/{wid}"))

    for who in ("alice", "sam"):
        for method, path in [("GET", "/api/webhooks"), ("GET", f"/api/webhooks/{wid}"),
                             ("POST", f"/api/webhooks/{wid}/test"),
                             ("POST", f"/api/webhooks/{wid}/rotate-secret"),
                             ("DELETE", f"/api/webhooks/{wid}")]:
            r = await staff[who].request(method, path)
            assert r.status_code == 403, (who, method, path, r.text)

    assert await ok(admin.delete(f"/api/webhooks/{wid}")) == {"status": "deleted"}
    assert (await admin.get(f"/api/webhooks/{wid}")).status_code == 404
    assert (await ok(admin.get("/api/webhooks")))["webhooks"] == []


async def test_each_event_is_sent_once_per_change_signed(
        app: Any, client: httpx.AsyncClient, bot: Bot, channel: FakeChannel,
        staff: dict[str, httpx.AsyncClient], receiver: FakeChannel) -> None:
    admin, alice, sam = staff["root"], staff["alice"], staff["sam"]
    hook = await subscribe(admin, receiver.url)

    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "help me",
                                                               need_help=True))
    tid = r.json()["ticket_id"]
    await ok(alice.post(f"/api/tickets/{tid}/claim"))
    await ok(alice.post(f"/api/tickets/{tid}/messages", json={"text": "On it"}))
    await ok(alice.post(f"/api/tickets/{tid}/notes", json={"text": "secret note"}))
    await ok(alice.post(f"/api/tickets/{tid}/transfer", json={"to": None}))
    await ok(sam.post(f"/api/tickets/{tid}/transfer", json={"to": "alice"}))
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "still there?"))
    assert r.status_code == 200
    await ok(alice.post(f"/api/tickets/{tid}/resolve", json={"closing_message": "Bye"}))

    async def settled() -> list[dict[str, Any]] | None:
        found = await rows(app, WebhookDelivery)
        return found if found and all(d["state"] == "delivered" for d in found) else None

    stored = await wait_until(settled, what="every webhook delivered")
    got = await received(receiver, len(stored))
    assert len(got) == len(stored)  # once each
    assert all(verified(hook["secret"], g) for g in got)
    assert len({g.headers["webhook-id"] for g in got}) == len(got)
    bodies = sorted((g.body for g in got), key=lambda b: b["timestamp"])
    types = [b["type"] for b in bodies]
    assert types.count("ticket.created") == 1
    assert types.count("ticket.requeued") == 1
    assert types.count("ticket.resolved") == 1
    assigned = [b["data"] for b in bodies if b["type"] == "ticket.assigned"]
    assert [(a["how"], a["by"]["username"], a["ticket"]["assignee"]["username"])
            for a in assigned] == [("claimed", "alice", "alice"), ("assigned", "sam", "alice")]
    requeued = next(b["data"] for b in bodies if b["type"] == "ticket.requeued")
    assert requeued["previous_assignee"]["username"] == "alice"
    assert requeued["ticket"]["state"] == "queued" and requeued["by"]["username"] == "alice"

    messages = [b["data"]["message"] for b in bodies if b["type"] == "message.created"]
    kinds_texts = [(m["kind"], m["text"]) for m in messages]
    assert ("agent", "On it") in kinds_texts and ("agent", "Bye") in kinds_texts
    assert ("user", "still there?") in kinds_texts
    assert all(kind in ("user", "bot", "agent") for kind, _ in kinds_texts)
    assert "secret note" not in json.dumps(bodies)
    assert next(m for m in messages if m["text"] == "On it")["author"]["username"] == "alice"
    first = next(b["data"] for b in bodies if b["type"] == "message.created")
    assert first["ticket_id"] == tid and first["integration_id"] == bot.id
    assert first["end_user"] == "u-1"

    resolved = next(b["data"] for b in bodies if b["type"] == "ticket.resolved")
    ticket = resolved["ticket"]
    assert ticket["id"] == tid and ticket["state"] == "resolved"
    assert ticket["wait_seconds"] is not None and ticket["handling_seconds"] is not None
    assert ticket["end_user"] == "u-1" and ticket["integration_id"] == bot.id
    assert resolved["by"]["username"] == "alice" and resolved["reason"] is None
    assert "csat" in ticket
    for body in bodies:
        assert set(body) == {"type", "timestamp", "data"}
        assert body["timestamp"].endswith("Z")
    assert all(g.headers["content-type"] == "application/json" for g in got)
    assert all(g.headers["webhook-timestamp"].isdigit() for g in got)

    log = await ok(admin.get(f"/api/webhooks/{hook['id']}/deliveries"))
    assert len(log["deliveries"]) == len(got)
    assert {d["state"] for d in log["deliveries"]} == {"delivered"}


async def test_a_subscription_gets_only_its_events_and_a_disabled_one_nothing(
        app: Any, client: httpx.AsyncClient, bot: Bot, channel: FakeChannel,
        staff: dict[str, httpx.AsyncClient], receiver: FakeChannel) -> None:
    admin, alice = staff["root"], staff["alice"]
    other = FakeChannel().start()
    try:
        resolved_only = await subscribe(admin, receiver.url, ["ticket.resolved"])
        off = await subscribe(admin, other.url)
        await ok(admin.patch(f"/api/webhooks/{off['id']}", json={"disabled": True}))
        r = await client.post(bot.smartly_path, json=builders.turn("u-2", "help",
                                                                   need_help=True))
        tid = r.json()["ticket_id"]
        await ok(alice.post(f"/api/tickets/{tid}/claim"))
        await ok(alice.post(f"/api/tickets/{tid}/resolve", json={}))
        (got,) = await received(receiver, 1)
        assert got.body["type"] == "ticket.resolved"
        assert verified(resolved_only["secret"], got)
        found = await rows(app, WebhookDelivery)
        assert [(d["subscription_id"], d["event_type"]) for d in found] == [
            (resolved_only["id"], "ticket.resolved")]
        # A test is refused while disabled, and nothing was ever sent there.
        r = await admin.post(f"/api/webhooks/{off['id']}/test")
        assert r.status_code == 409, r.text
        assert other.received == []
    finally:
        other.stop()


async def test_the_satisfaction_rating_then_its_comment_follow_the_resolution(
        app: Any, client: httpx.AsyncClient, bot: Bot, channel: FakeChannel,
        staff: dict[str, httpx.AsyncClient], receiver: FakeChannel) -> None:
    admin, alice = staff["root"], staff["alice"]
    hook = await subscribe(admin, receiver.url, ["ticket.rated", "ticket.resolved"])
    r = await client.post(bot.smartly_path, json=builders.turn("u-3", "help", need_help=True))
    tid = r.json()["ticket_id"]
    await ok(alice.post(f"/api/tickets/{tid}/claim"))
    await ok(alice.post(f"/api/tickets/{tid}/resolve", json={"survey": True}))
    for text in ("4", "Quick and kind"):
        r = await client.post(bot.smartly_path, json=builders.turn("u-3", text))
        assert r.status_code == 200, r.text
    got = await received(receiver, 3)
    assert all(verified(hook["secret"], g) for g in got)
    resolved, rating, comment = sorted((g.body for g in got), key=lambda b: b["timestamp"])
    assert resolved["type"] == "ticket.resolved"
    assert resolved["data"]["ticket"]["csat"] is None  # the survey goes out just after
    assert (rating["type"], rating["data"]["what"]) == ("ticket.rated", "rating")
    assert rating["data"]["ticket"]["id"] == tid
    assert rating["data"]["ticket"]["csat"]["score"] == 4
    assert rating["data"]["ticket"]["csat"]["sent_at"] is not None
    assert (comment["type"], comment["data"]["what"]) == ("ticket.rated", "comment")
    assert comment["data"]["ticket"]["csat"] | {"at": None, "sent_at": None} == {
        "score": 4, "comment": "Quick and kind", "at": None, "sent_at": None}
