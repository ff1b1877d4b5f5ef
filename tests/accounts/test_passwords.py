"""Passwords one must change, and one's own password and display name, through the real
app (in-process HTTP): the generated first admin's, an account an admin marks, the
API's refusal until then, and a change ending one's other sessions only. The live
stream's refusal is in realtime/test_realtime_sessions.py, the console's form in
console/test_console_account.py."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from connector.accounts import users
from connector.web.routes.openapi import ENDPOINTS
from tests.conftest import PASSWORD, add_user, password_hash, sign_in
from tests.helpers import store_of

pytestmark = pytest.mark.anyio

NEW = "a brand new passphrase"


async def marked_user(app: Any, username: str, role: str = "admin") -> None:
    async with store_of(app).transaction() as tx:
        await users.create(tx.conn, username, PASSWORD, role, password_hash=password_hash(),
                           must_change_password=True)


def refused(r: httpx.Response) -> bool:
    return r.status_code == 403 and r.json()["error"] == "password_change_required"


async def test_the_generated_first_admin_must_change_the_password(app):
    async with store_of(app).transaction() as tx:
        generated = await users.ensure_admin(tx.conn, "boss", None)
    assert generated is not None
    async with AsyncExitStack() as stack:
        boss = await sign_in(stack, app, "boss", generated)
        session = (await boss.get("/api/session")).json()
        assert session["user"]["must_change_password"] is True
        for method, path in [("GET", "/api/tickets"), ("GET", "/api/me"),
                             ("GET", "/api/users"), ("PATCH", "/api/me")]:
            r = await boss.request(method, path, json={"status": "online"}
                                   if method == "PATCH" else None)
            assert refused(r), (method, path, r.text)
        r = await boss.post("/api/me/password", json={"current": generated, "new": NEW})
        assert r.json() == {"status": "password changed"}, r.text
        assert (await boss.get("/api/users")).status_code == 200
        assert (await boss.get("/api/session")).json()["user"]["must_change_password"] is False


async def test_a_password_from_the_environment_need_not_be_changed(app):
    async with store_of(app).transaction() as tx:
        assert await users.ensure_admin(tx.conn, "boss", "chosen by the operator") is None
    async with AsyncExitStack() as stack:
        boss = await sign_in(stack, app, "boss", "chosen by the operator")
        assert (await boss.get("/api/users")).status_code == 200


async def test_only_session_sign_out_and_the_change_are_answered_until_then(app):
    await marked_user(app, "ann", role="agent")
    async with AsyncExitStack() as stack:
        ann = await sign_in(stack, app, "ann")
        allowed = {("get", "/api/session"), ("post", "/api/logout"),
                   ("post", "/api/me/password")}
        for endpoint in ENDPOINTS:
            if endpoint.path == "/api/login" or (endpoint.method, endpoint.path) in allowed:
                continue
            path = endpoint.path.replace("{id}", "1")
            r = await ann.request(endpoint.method.upper(), path, json={})
            assert refused(r), (endpoint.method, path, r.status_code, r.text)
        assert (await ann.get("/api/session")).status_code == 200
        assert (await ann.post("/api/logout")).status_code == 200


async def test_an_admin_marks_an_account_on_creation_and_later(app):
    await add_user(app, "root", "admin")
    await add_user(app, "bob", "agent")
    async with AsyncExitStack() as stack:
        root = await sign_in(stack, app, "root")
        r = await root.post("/api/users", json={"username": "carol", "role": "agent",
                                                "password": PASSWORD,
                                                "must_change_password": True})
        assert r.status_code == 201 and r.json()["must_change_password"] is True
        carol = await sign_in(stack, app, "carol")
        assert refused(await carol.get("/api/tickets"))

        bob = await sign_in(stack, app, "bob")
        r = await root.patch(f"/api/users/{(await bob.get('/api/me')).json()['id']}",
                             json={"must_change_password": True})
        assert r.status_code == 200 and r.json()["must_change_password"] is True
        assert (await bob.get("/api/session")).status_code == 401  # signed out
        bob = await sign_in(stack, app, "bob")
        assert refused(await bob.get("/api/tickets"))
        listed = {u["username"]: u["must_change_password"]
                  for u in (await root.get("/api/users")).json()["users"]}
        assert listed == {"bob": True, "carol": True, "root": False}


@pytest.mark.parametrize(("body", "field"), [
    ({"current": "not the password", "new": NEW}, "current"),
    ({"current": PASSWORD, "new": PASSWORD}, "new"),
    ({"current": PASSWORD, "new": "short"}, "new"),
    ({"current": PASSWORD}, "new"),
    ({"current": PASSWORD, "new": NEW, "again": NEW}, "again"),
])
async def test_a_refused_change_names_the_field_and_changes_nothing(app, body, field):
    await add_user(app, "ann")
    async with AsyncExitStack() as stack:
        ann = await sign_in(stack, app, "ann")
        r = await ann.post("/api/me/password", json=body)
        assert r.status_code == 422, r.text
        assert [f["field"] for f in r.json()["fields"]] == [field]
        await sign_in(stack, app, "ann")  # the old password still works


async def test_changing_ends_the_other_sessions_and_keeps_this_one(app):
    await add_user(app, "ann")
    async with AsyncExitStack() as stack:
        here = await sign_in(stack, app, "ann")
        elsewhere = await sign_in(stack, app, "ann")
        r = await here.post("/api/me/password", json={"current": PASSWORD, "new": NEW})
        assert r.status_code == 200, r.text
        assert (await here.get("/api/tickets")).status_code == 200
        assert (await elsewhere.get("/api/session")).status_code == 401
        r = await here.post("/api/login", json={"username": "ann", "password": PASSWORD})
        assert r.status_code == 401
        await sign_in(stack, app, "ann", NEW)


async def test_ones_own_display_name_is_what_the_session_shows(app):
    await add_user(app, "ann")
    async with AsyncExitStack() as stack:
        ann = await sign_in(stack, app, "ann")
        assert (await ann.get("/api/session")).json()["user"]["display_name"] == "ann"
        r = await ann.patch("/api/me", json={"display_name": "Ann Lee"})
        assert r.status_code == 200 and r.json()["display_name"] == "Ann Lee"
        assert (await ann.get("/api/session")).json()["user"]["display_name"] == "Ann Lee"
        r = await ann.patch("/api/me", json={"display_name": None})
        assert (await ann.get("/api/session")).json()["user"]["display_name"] == "ann"
