"""Sending event webhooks (`delivery.webhook_worker`, `delivery.webhook_sender`) from the
real app to a real HTTP receiver (tests/fakes.py), on SQLite and on PostgreSQL: the
Standard Webhooks signature (checked here independently, from the specification), both
signatures during a rotation's grace, retries after failures, the dead letter after the
give-up time and its resend, and 410 Gone disabling the subscription.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import pytest

from connector.domain import webhooks
from connector.settings import Settings
from connector.storage.db import utcnow
from connector.storage.webhook_models import WebhookDelivery
from tests.conftest import add_user, sign_in
from tests.fakes import FakeChannel, Received, Reply
from tests.helpers import ok, rows, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def give_up() -> float | None:
    """`retry_give_up_seconds`, when a test sets it (by parametrizing this name)."""
    return None


@pytest.fixture
def settings(each_dialect: Settings, give_up: float | None) -> Settings:
    if give_up is None:
        return each_dialect
    return each_dialect.model_copy(update={"retry_give_up_seconds": give_up})


@pytest.fixture
async def admin(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncExitStack() as stack:
        await add_user(app, "root", "admin")
        yield await sign_in(stack, app, "root")


def signatures(got: Received) -> list[str]:
    return got.headers["webhook-signature"].split(" ")


def signs(secret: str, got: Received) -> bool:
    """Written from the specification, not with the app's code: HMAC-SHA256 keyed by the
    base64-decoded part after `whsec_`, over `{webhook-id}.{webhook-timestamp}.{body}`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = b".".join([got.headers["webhook-id"].encode(),
                         got.headers["webhook-timestamp"].encode(), got.raw])
    mac = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s, f"v1,{mac}") for s in signatures(got))


async def subscribe(admin: httpx.AsyncClient, url: str) -> dict[str, Any]:
    r = await admin.post("/api/webhooks", json={"url": url, "events": ["ticket.resolved"]})
    assert r.status_code == 201, r.text
    return r.json()


async def send_test(admin: httpx.AsyncClient, hook: dict[str, Any]) -> dict[str, Any]:
    r = await admin.post(f"/api/webhooks/{hook['id']}/test")
    assert r.status_code == 202, r.text
    return r.json()


async def settled(app: Any, delivery_id: int, state: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        (found,) = await rows(app, WebhookDelivery, WebhookDelivery.id == delivery_id)
        return found if found["state"] == state else None

    return await wait_until(check, what=f"delivery {delivery_id} {state}")


async def test_a_test_event_is_signed_as_the_specification_says(
        app: Any, admin: httpx.AsyncClient, receiver: FakeChannel) -> None:
    hook = await subscribe(admin, receiver.url)
    queued = await send_test(admin, hook)
    assert queued["state"] == "queued" and queued["event_type"] == "webhook.test"
    (got,) = await anyio.to_thread.run_sync(receiver.wait_delivered, 1)
    assert signs(hook["secret"], got) and len(signatures(got)) == 1
    assert got.headers["webhook-id"] == queued["webhook_id"]
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.body["type"] == "webhook.test" and got.body["data"]["subscription_id"] == hook["id"]
    # Another secret does not verify it.
    other = await subscribe(admin, receiver.url)
    assert not signs(other["secret"], got)
    await settled(app, queued["id"], "delivered")  # recorded once the answer is read
    log = await ok(admin.get(f"/api/webhooks/{hook['id']}/deliveries"))
    (entry,) = log["deliveries"]
    assert entry["state"] == "delivered" and entry["last_status"] == 200


async def test_during_a_rotation_both_secrets_sign(
        app: Any, admin: httpx.AsyncClient, receiver: FakeChannel) -> None:
    hook = await subscribe(admin, receiver.url)
    rotated = await ok(admin.post(f"/api/webhooks/{hook['id']}/rotate-secret",
                                  json={"grace_seconds": 3600}))
    await send_test(admin, hook)
    (got,) = await anyio.to_thread.run_sync(receiver.wait_delivered, 1)
    assert len(signatures(got)) == 2
    assert signs(rotated["secret"], got) and signs(hook["secret"], got)
    # The current secret's signature comes first.
    only_new = Received(got.path, {**got.headers,
                                   "webhook-signature": signatures(got)[0]}, got.body, got.at,
                        got.raw)
    assert signs(rotated["secret"], only_new)

    # Without a grace, the old secret stops signing at once.
    again = await ok(admin.post(f"/api/webhooks/{hook['id']}/rotate-secret",
                                json={"grace_seconds": 0}))
    await send_test(admin, hook)
    _, last = await anyio.to_thread.run_sync(receiver.wait_delivered, 2)
    assert len(signatures(last)) == 1
    assert signs(again["secret"], last) and not signs(rotated["secret"], last)


async def test_failures_are_retried_with_the_same_id_until_delivered(
        app: Any, admin: httpx.AsyncClient, receiver: FakeChannel) -> None:
    receiver.script = [Reply(500), Reply(404), Reply(503, headers={"Retry-After": "0"})]
    hook = await subscribe(admin, receiver.url)
    queued = await send_test(admin, hook)
    done = await settled(app, queued["id"], "delivered")
    assert done["attempts"] == 4 and done["last_status"] == 200
    got = receiver.received
    assert [g.headers["webhook-id"] for g in got] == [queued["webhook_id"]] * 4
    assert all(signs(hook["secret"], g) for g in got)
    assert all(g.raw == got[0].raw for g in got)  # the body as stored, every time


@pytest.mark.parametrize("give_up", [0.3])
async def test_given_up_is_a_dead_letter_that_can_be_resent(
        app: Any, admin: httpx.AsyncClient, receiver: FakeChannel) -> None:
    receiver.default = Reply(500)
    hook = await subscribe(admin, receiver.url)
    queued = await send_test(admin, hook)
    failed = await settled(app, queued["id"], "failed")
    assert failed["last_error"].startswith("gave up after")
    # How many attempts fit in the give-up time depends on the machine's speed.
    assert re.match(rf"gave up after {len(receiver.received)} attempts: HTTP 500",
                    failed["last_error"])
    log = await ok(admin.get(f"/api/webhooks/{hook['id']}/deliveries"))
    assert log["deliveries"][0]["state"] == "failed"

    receiver.default = Reply(200)
    again = await ok(admin.post(f"/api/webhook-deliveries/{queued['id']}/resend"))
    assert again["state"] == "queued"
    await settled(app, queued["id"], "delivered")
    (got,) = receiver.delivered
    assert got.headers["webhook-id"] == queued["webhook_id"] and signs(hook["secret"], got)
    r = await admin.post(f"/api/webhook-deliveries/{queued['id']}/resend")
    assert r.status_code == 409, r.text
    assert (await admin.post("/api/webhook-deliveries/999999/resend")).status_code == 404


async def test_gone_disables_the_subscription(
        app: Any, admin: httpx.AsyncClient, receiver: FakeChannel) -> None:
    receiver.default = Reply(410)
    hook = await subscribe(admin, receiver.url)
    queued = await send_test(admin, hook)
    failed = await settled(app, queued["id"], "failed")
    assert failed["attempts"] == 1 and failed["last_status"] == 410
    shown = await ok(admin.get(f"/api/webhooks/{hook['id']}"))
    assert shown["disabled"] is True and "410" in shown["disabled_reason"]
    enabled = await ok(admin.patch(f"/api/webhooks/{hook['id']}", json={"disabled": False}))
    assert enabled["disabled"] is False and enabled["disabled_reason"] is None


async def test_housekeeping_forgets_settled_deliveries_past_their_time(
        app: Any, admin: httpx.AsyncClient, receiver: FakeChannel) -> None:
    hook = await subscribe(admin, receiver.url)
    first = await send_test(admin, hook)
    await settled(app, first["id"], "delivered")
    receiver.default = Reply(500)
    pending = await send_test(admin, hook)
    later = utcnow() + webhooks.KEEP + dt.timedelta(days=1)
    async with app.state.store.begin() as conn:
        await webhooks.prune(conn, later)
    left = [d["id"] for d in await rows(app, WebhookDelivery)]
    assert left == [pending["id"]]  # a pending one is never forgotten
