"""Admin API through the real app: integrations (webhook URLs, keys, channel) and users."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from tests import builders
from tests.conftest import add_user, free_port, sign_in
from tests.fakes import FakeChannel, Reply

pytestmark = pytest.mark.anyio



@asynccontextmanager
async def signed_in(app: Any, username: str, role: str) -> AsyncIterator[httpx.AsyncClient]:
    """A new user of `role`, signed in: an HTTP client with its cookie and CSRF header."""
    await add_user(app, username, role)
    async with AsyncExitStack() as stack:
        yield await sign_in(stack, app, username)


@pytest.fixture
async def admin(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, "root", "admin") as c:
        yield c


def path_of(url: str) -> str:
    """The path and query of an absolute URL the API handed out (base is the app)."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://testserver"  # the public URL
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def fields(r: httpx.Response) -> list[str]:
    return [f["field"] for f in r.json().get("fields", [])]


async def create(admin: httpx.AsyncClient, channel_url: str, **extra: Any) -> dict[str, Any]:
    r = await admin.post("/api/integrations",
                         json={"name": "Support bot", "channel_url": channel_url, **extra})
    assert r.status_code == 201, r.text
    return r.json()


# --- integrations -----------------------------------------------------------------------------

async def test_create_integration_shows_the_key_once_and_its_urls_work(
        app, client, admin, channel):
    created = await create(admin, channel.url)
    key = created["key"]
    assert len(key) >= 32
    assert created["name"] == "Support bot" and created["channel_url"] == channel.url
    assert created["verify_token"]
    iid = created["id"]
    assert created["smartly_webhook_url"] == f"http://testserver/hooks/smartly/{iid}?key={key}"
    assert created["chatlayer_webhook_url"] == f"http://testserver/hooks/chatlayer/{iid}"

    # Later reads never show the key again.
    listed = await admin.get("/api/integrations")
    one = await admin.get(f"/api/integrations/{iid}")
    assert listed.status_code == one.status_code == 200
    assert [i["id"] for i in listed.json()["integrations"]] == [iid]
    for r in (listed, one):
        assert key not in r.text
        assert "smartly_webhook_url" not in r.text and '"key"' not in r.text
    assert one.json()["chatlayer_webhook_url"] == created["chatlayer_webhook_url"]

    # The URLs as handed out work for real webhook posts.
    r = await client.post(path_of(created["smartly_webhook_url"]),
                          json=builders.turn("u-1", "help", need_help=True))
    assert r.status_code == 200, r.text
    assert r.json()["ticket_opened"] is True
    r = await client.post(path_of(created["chatlayer_webhook_url"]),
                          json=builders.chatlayer("u-1", created["verify_token"]))
    assert r.status_code == 200, r.text
    r = await client.post(f"/hooks/smartly/{iid}?key=wrong", json=builders.turn("u-1", "x"))
    assert r.status_code == 401


async def test_create_integration_validation(admin):
    for body, field in (
        ({"name": "x", "channel_url": "ftp://example.com/hook"}, "channel_url"),
        ({"name": "x", "channel_url": "not a url"}, "channel_url"),
        ({"name": "", "channel_url": "https://example.com/hook"}, "name"),
        ({"name": "   ", "channel_url": "https://example.com/hook"}, "name"),
        ({"channel_url": "https://example.com/hook"}, "name"),
        ({"name": "x", "channel_url": "https://example.com/hook", "verify_token": ""},
         "verify_token"),
        ({"name": "x", "channel_url": "https://example.com/hook", "colour": "red"}, "colour"),
        ({"name": 5, "channel_url": "https://example.com/hook"}, "name"),
    ):
        r = await admin.post("/api/integrations", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in fields(r), (body, r.json())
    assert (await admin.get("/api/integrations")).json()["integrations"] == []
    created = await create(admin, "https://example.com/hook", verify_token="my-token")
    assert created["verify_token"] == "my-token"


async def test_channel_urls_the_client_cannot_send_to_are_refused(admin):
    """Each of these made a 500 (the URL parser raised) or was stored and then made the
    test message a 500 (httpx could not parse it)."""
    created = await create(admin, "https://example.com/hook")
    for url in ("http://[", "http://\uff03/", "http://127.0.0.1:99999/", "http://xn--a/",
                "http://a\x01b/", "http://@/"):
        r = await admin.post("/api/integrations", json={"name": "x", "channel_url": url})
        assert r.status_code == 422 and fields(r) == ["channel_url"], (url, r.text)
        r = await admin.patch(f"/api/integrations/{created['id']}", json={"channel_url": url})
        assert r.status_code == 422 and fields(r) == ["channel_url"], (url, r.text)
    assert [i["id"] for i in (await admin.get("/api/integrations")).json()["integrations"]] == [
        created["id"]]


async def test_rotate_key_keeps_the_old_key_for_the_grace_period(app, client, admin, channel):
    created = await create(admin, channel.url)
    iid, old = created["id"], path_of(created["smartly_webhook_url"])

    r = await admin.post(f"/api/integrations/{iid}/rotate-key", json={"grace_seconds": 3600})
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["key"] != created["key"]
    assert rotated["previous_key_valid_until"] is not None
    assert rotated["key_rotated_at"] is not None
    new = path_of(rotated["smartly_webhook_url"])
    for path in (old, new):  # both work during the grace period
        r = await client.post(path, json=builders.turn("u-1", "hello"))
        assert r.status_code == 200, r.text

    # No grace: the previous key stops at once. The key is shown only in this answer.
    r = await admin.post(f"/api/integrations/{iid}/rotate-key", json={"grace_seconds": 0})
    assert r.status_code == 200
    third = path_of(r.json()["smartly_webhook_url"])
    assert (await client.post(new, json=builders.turn("u-1", "x"))).status_code == 401
    assert (await client.post(old, json=builders.turn("u-1", "x"))).status_code == 401
    assert (await client.post(third, json=builders.turn("u-1", "x"))).status_code == 200
    assert r.json()["key"] not in (await admin.get(f"/api/integrations/{iid}")).text

    # Without a body the configured default grace applies.
    r = await admin.post(f"/api/integrations/{iid}/rotate-key")
    assert r.status_code == 200
    assert (await client.post(third, json=builders.turn("u-1", "x"))).status_code == 200
    for body, field in (({"grace_seconds": -1}, "grace_seconds"),
                        ({"grace_seconds": "soon"}, "grace_seconds"),
                        ({"grace": 5}, "grace")):
        r = await admin.post(f"/api/integrations/{iid}/rotate-key", json=body)
        assert r.status_code == 422 and field in fields(r), body


async def test_patch_channel_url_and_verify_token(app, client, admin, channel):
    created = await create(admin, channel.url)
    iid = created["id"]
    for body, field in (({"channel_url": "ftp://example.com/x"}, "channel_url"),
                        ({"channel_url": "javascript:alert(1)"}, "channel_url"),
                        ({"channel_url": ""}, "channel_url"),
                        ({"verify_token": ""}, "verify_token"),
                        ({"verify_token": 7}, "verify_token"),
                        ({"key": "mine"}, "key")):
        r = await admin.patch(f"/api/integrations/{iid}", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in fields(r), (body, r.json())
    assert (await admin.patch("/api/integrations/nope", json={"name": "x"})).status_code == 404

    other = FakeChannel().start()
    try:
        r = await admin.patch(f"/api/integrations/{iid}",
                              json={"channel_url": other.url, "verify_token": "token-2"})
        assert r.status_code == 200, r.text
        assert (r.json()["channel_url"], r.json()["verify_token"]) == (other.url, "token-2")
        assert r.json()["name"] == "Support bot"  # untouched

        # The new verify token is the one the Chatlayer webhook accepts now...
        hook = path_of(created["chatlayer_webhook_url"])
        old_token = created["verify_token"]
        assert (await client.post(hook, json=builders.chatlayer("u-1", old_token))
                ).status_code == 401
        assert (await client.post(hook, json=builders.chatlayer("u-1", "token-2"))
                ).status_code == 200
        # ...and replies go to the new channel URL, carrying the new token.
        async with signed_in(app, "alice", "agent") as agent:
            smartly = path_of(created["smartly_webhook_url"])
            r = await client.post(smartly, json=builders.turn("u-2", "help", need_help=True))
            ticket = r.json()["ticket_id"]
            assert (await agent.post(f"/api/tickets/{ticket}/claim")).status_code == 200
            r = await agent.post(f"/api/tickets/{ticket}/messages", json={"text": "hi"})
            assert r.status_code == 201
            (got,) = await anyio.to_thread.run_sync(other.wait_delivered, 1)
        assert got.body["verifyToken"] == "token-2"
        assert channel.received == []
    finally:
        other.stop()


async def test_deliveries_list_shows_status_codes(app, client, admin, channel):
    created = await create(admin, channel.url)
    iid, smartly = created["id"], path_of(created["smartly_webhook_url"])
    channel.script = [Reply(200), Reply(400)]
    async with signed_in(app, "alice", "agent") as agent:
        sent = []
        for user, text in (("u-1", "first"), ("u-2", "second")):
            r = await client.post(smartly, json=builders.turn(user, "help", need_help=True))
            ticket = r.json()["ticket_id"]
            assert (await agent.post(f"/api/tickets/{ticket}/claim")).status_code == 200
            r = await agent.post(f"/api/tickets/{ticket}/messages", json={"text": text})
            sent.append(r.json()["id"])
            # One at a time, so the scripted answers go to the replies in order.
            with anyio.fail_after(10):
                while True:
                    listed = (await admin.get(f"/api/integrations/{iid}/deliveries")).json()
                    done = [d for d in listed["deliveries"] if d["message_id"] == sent[-1]]
                    if done and done[0]["state"] in ("delivered", "failed"):
                        break
                    await anyio.sleep(0.05)
    deliveries = {d["message_id"]: d for d in listed["deliveries"]}
    assert set(deliveries) == set(sent)
    ok, refused = deliveries[sent[0]], deliveries[sent[1]]
    assert (ok["state"], ok["last_status"], ok["attempts"]) == ("delivered", 200, 1)
    assert ok["delivered_at"] is not None
    assert (refused["state"], refused["last_status"]) == ("failed", 400)
    assert refused["last_error"]
    assert all(d["integration_id"] == iid for d in deliveries.values())
    assert (await admin.get("/api/integrations/nope/deliveries")).status_code == 404


async def test_test_message_reports_what_the_channel_answered(admin, channel):
    created = await create(admin, channel.url)
    r = await admin.post(f"/api/integrations/{created['id']}/test",
                         json={"recipient": "u-9", "text": "ping"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and r.json()["status"] == 200
    (got,) = channel.received
    assert got.body == {"recipient": {"id": "u-9"}, "verifyToken": created["verify_token"],
                        "message": {"text": "ping"}}
    channel.default = Reply(503)
    r = await admin.post(f"/api/integrations/{created['id']}/test",
                         json={"recipient": "u-9", "text": "ping"})
    assert (r.json()["ok"], r.json()["status"]) == (False, 503)


async def test_test_message_goes_out_like_a_delivery_attempt(admin, channel, caplog):
    """The same channel as replies: an Idempotency-Key, and one `connector.delivery` line
    (with the channel URL redacted), but no delivery row."""
    caplog.set_level(logging.INFO, logger="connector.delivery")
    created = await create(admin, f"{channel.url}?token=chan-secret-7")
    test = f"/api/integrations/{created['id']}/test"
    for _ in range(2):
        r = await admin.post(test, json={"recipient": "u-9", "text": "ping"})
        assert (r.json()["ok"], r.json()["status"]) == (True, 200)
    keys = [got.headers["idempotency-key"] for got in channel.received]
    assert len(set(keys)) == 2 and all(re.fullmatch("[0-9a-f]{32}", k) for k in keys)
    lines = [r.getMessage() for r in caplog.records if r.name == "connector.delivery"]
    assert len(lines) == 2
    assert lines[0].startswith(
        "delivery=test message=- attempt=1 outcome=delivered status=200 error=None duration_ms=")
    assert lines[0].endswith(f" next_in=- target={channel.url}")
    listed = (await admin.get(f"/api/integrations/{created['id']}/deliveries")).json()
    assert listed["deliveries"] == []  # no delivery row: the test sends are listed apart
    assert [(t["recipient"], t["excerpt"], t["ok"], t["status"], t["error"])
            for t in listed["tests"]] == [("u-9", "ping", True, 200, None)] * 2


async def test_test_message_to_a_channel_that_is_down(admin, caplog):
    caplog.set_level(logging.INFO, logger="connector.delivery")
    created = await create(admin, f"http://127.0.0.1:{free_port()}/down")
    r = await admin.post(f"/api/integrations/{created['id']}/test",
                         json={"recipient": "u-9", "text": "ping"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["ok"], result["status"], result["error"]) == (False, None, "ConnectError")
    assert set(result) == {"ok", "status", "error", "duration_ms"}
    (line,) = [r.getMessage() for r in caplog.records if r.name == "connector.delivery"]
    assert " outcome=retrying status=None error=ConnectError: connection failed " in line
    (test,) = (await admin.get(f"/api/integrations/{created['id']}/deliveries")).json()["tests"]
    assert (test["ok"], test["status"], test["error"]) == (False, None, "ConnectError")


# --- users ------------------------------------------------------------------------------------

async def test_create_list_and_patch_users(app, client, admin):
    r = await admin.post("/api/users", json={"username": "carol", "role": "agent",
                                             "password": "long enough secret"})
    assert r.status_code == 201, r.text
    carol = r.json()
    assert (carol["username"], carol["role"], carol["disabled"]) == ("carol", "agent", False)
    assert carol["must_change_password"] is False
    assert not {"password", "password_hash"} & set(carol) and "argon2" not in r.text

    listed = (await admin.get("/api/users")).json()["users"]
    assert [u["username"] for u in listed] == ["carol", "root"]
    assert "argon2" not in str(listed)

    # carol signs in; a promotion applies to her running session at once.
    r = await client.post("/api/login", json={"username": "carol",
                                              "password": "long enough secret"})
    assert r.status_code == 200
    assert (await client.get("/api/queue")).status_code == 403
    r = await admin.patch(f"/api/users/{carol['id']}", json={"role": "supervisor"})
    assert r.status_code == 200 and r.json()["role"] == "supervisor"
    assert (await client.get("/api/queue")).status_code == 200

    r = await admin.patch(f"/api/users/{carol['id']}", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert (await client.get("/api/session")).status_code == 401


async def test_user_validation(app, admin):
    await admin.post("/api/users", json={"username": "carol", "role": "agent",
                                         "password": "long enough secret"})
    for body, field in (
        ({"username": "dave", "role": "boss", "password": "long enough"}, "role"),
        ({"username": "dave", "role": "agent", "password": "short"}, "password"),
        ({"username": "dave smith", "role": "agent", "password": "long enough"}, "username"),
        ({"username": "dave\n", "role": "agent", "password": "long enough"}, "username"),
        ({"username": "", "role": "agent", "password": "long enough"}, "username"),
        ({"username": "carol", "role": "agent", "password": "long enough"}, "username"),
        ({"username": "dave", "role": "agent"}, "password"),
        ({"username": "dave", "role": "agent", "password": "long enough", "admin": True},
         "admin"),
        ({"username": "dave", "role": 1, "password": "long enough"}, "role"),
    ):
        r = await admin.post("/api/users", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in fields(r), (body, r.json())
    names = [u["username"] for u in (await admin.get("/api/users")).json()["users"]]
    assert names == ["carol", "root"]

    carol = next(u for u in (await admin.get("/api/users")).json()["users"]
                 if u["username"] == "carol")
    for body, field in (({"role": "boss"}, "role"), ({"password": "short"}, "password"),
                        ({"disabled": "yes"}, "disabled"), ({"username": "x"}, "username")):
        r = await admin.patch(f"/api/users/{carol['id']}", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in fields(r), (body, r.json())
    assert (await admin.patch("/api/users/999999", json={"disabled": True})).status_code == 404
    me = (await admin.get("/api/session")).json()["user"]["id"]
    assert (await admin.patch(f"/api/users/{me}", json={"disabled": True})).status_code == 409
    assert (await admin.patch(f"/api/users/{me}", json={"role": "agent"})).status_code == 409
    assert (await admin.get("/api/users")).status_code == 200  # still an admin


async def test_rotate_key_body_is_bounded_and_may_be_empty(app, admin, channel):
    """An oversized body is refused without being read whole (it was read into memory
    first), and an empty body rotates with the default grace."""
    created = await create(admin, channel.url)
    body = builders.EndlessBody()
    path = f"/api/integrations/{created['id']}/rotate-key"
    r = await admin.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert body.sent <= 4 * len(body.chunk)
    r = await admin.post(path)
    assert r.status_code == 200 and r.json()["key"] != created["key"]


async def test_an_integer_written_with_a_fraction_is_that_integer(app, client, admin):
    """JSON Schema's `integer` (the API's description) takes 2.0; 2.5 stays refused."""
    carol = (await admin.post("/api/users", json={"username": "carol", "role": "agent",
                                                  "password": "long enough secret"})).json()
    r = await admin.patch(f"/api/users/{carol['id']}", json={"max_concurrent": 2.0})
    assert (r.status_code, r.json()["max_concurrent"]) == (200, 2), r.text
    r = await admin.patch(f"/api/users/{carol['id']}", json={"max_concurrent": 2.5})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "max_concurrent"
