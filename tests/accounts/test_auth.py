"""Sign-in, sessions and CSRF through the real app (in-process HTTP).

Login throttling, cookie flags, revocation (logout, password change, disabling),
idle timeout and absolute lifetime, and the CSRF header on every state-changing
request. Closing the live stream on logout is in realtime/test_realtime_sessions.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from connector.accounts import auth, users
from connector.app import create_app
from connector.storage.migrate import upgrade
from connector.web.routes.openapi import ENDPOINTS
from tests.conftest import PASSWORD, add_user, make_settings

pytestmark = pytest.mark.anyio



Opener = Callable[..., Awaitable[httpx.AsyncClient]]


@asynccontextmanager
async def app_with(tmp_path: Path, **overrides: Any) -> AsyncIterator[Any]:
    """The real app on its own migrated database with some settings changed."""
    where = tmp_path / "custom"
    where.mkdir()
    s = make_settings(where, **overrides)
    await anyio.to_thread.run_sync(upgrade, s)
    application = create_app(s)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def browsers(app: Any) -> AsyncIterator[Opener]:
    """Open independent HTTP clients (own cookie jar, own client address) on `app`."""
    async with AsyncExitStack() as stack:

        async def open_(username: str | None = None, password: str = PASSWORD,
                        address: str = "127.0.0.1") -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            c = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            if username is not None:
                r = await login(c, username, password)
                assert r.status_code == 200, r.text
                c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            return c

        yield open_


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[Opener]:
    async with browsers(app) as open_:
        yield open_


async def login(c: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/api/login", json={"username": username, "password": password})


def cookie_attributes(response: httpx.Response) -> tuple[str, set[str]]:
    """(value, lower-cased attributes) of the session cookie set by `response`."""
    (header,) = [h for h in response.headers.get_list("set-cookie")
                 if h.startswith(f"{auth.COOKIE}=")]
    first, *attrs = [part.strip() for part in header.split(";")]
    return first.split("=", 1)[1], {a.lower() for a in attrs}


def with_token(c: httpx.AsyncClient, token: str) -> dict[str, str]:
    """Headers presenting `token` explicitly (proves revocation is server-side)."""
    return {"Cookie": f"{auth.COOKIE}={token}", "X-CSRF-Token": c.headers["X-CSRF-Token"]}


# --- sign-in ----------------------------------------------------------------------------------

async def test_login_sets_a_strict_httponly_cookie_and_returns_user_and_csrf(app, client):
    alice = await add_user(app, "alice")
    r = await login(client, "alice")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == {"id": alice.id, "username": "alice", "role": "agent",
                            "display_name": "alice", "must_change_password": False}
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 32
    assert alice.password_hash not in r.text and "argon2" not in r.text

    token, attrs = cookie_attributes(r)
    assert len(token) >= 32
    assert "httponly" in attrs
    assert "samesite=strict" in attrs
    assert "path=/" in attrs
    assert "secure" not in attrs  # served over plain http
    assert token not in r.text  # the cookie value is never in the body

    r = await client.get("/api/session")
    assert r.status_code == 200
    assert r.json()["user"]["username"] == "alice"
    assert r.json()["csrf_token"] == body["csrf_token"]
    assert isinstance(r.json()["cursor"], int)


async def test_cookie_is_secure_when_served_over_https(tmp_path):
    async with app_with(tmp_path, public_url="https://connector.example") as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            c = await open_()
            r = await login(c, "alice")
            assert r.status_code == 200, r.text
            _, attrs = cookie_attributes(r)
            assert {"secure", "httponly", "samesite=strict", "path=/"} <= attrs


async def test_login_from_a_foreign_origin_is_refused(app, client):
    await add_user(app, "alice")
    r = await client.post("/api/login", json={"username": "alice", "password": PASSWORD},
                          headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    r = await client.post("/api/login", json={"username": "alice", "password": PASSWORD},
                          headers={"Origin": "http://testserver"})
    assert r.status_code == 200


async def test_wrong_password_and_unknown_user_get_the_same_401(app, client):
    await add_user(app, "alice")
    wrong_password = await login(client, "alice", "not the password")
    unknown_user = await login(client, "mallory", "not the password")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json() == unknown_user.json()
    assert wrong_password.json()["error"] == "unauthorized"
    for r in (wrong_password, unknown_user):
        assert "set-cookie" not in r.headers
        assert "alice" not in r.text and "mallory" not in r.text


@pytest.mark.parametrize(("body", "field"), [
    ({"username": "alice"}, "password"),
    ({"username": "", "password": PASSWORD}, "username"),
    ({"username": "alice", "password": 5}, "password"),
    ({"username": "alice", "password": PASSWORD, "remember": True}, "remember"),
])
async def test_login_body_is_validated(client, body, field):
    r = await client.post("/api/login", json=body)
    assert r.status_code == 422
    assert field in [f["field"] for f in r.json()["fields"]]


async def test_repeated_failures_for_one_username_are_refused(tmp_path):
    async with app_with(tmp_path, login_max_failures=3, login_lockout_seconds=300) as application:
        await add_user(application, "alice")
        await add_user(application, "bob")
        async with browsers(application) as open_:
            c = await open_()
            for _ in range(3):
                assert (await login(c, "alice", "guess")).status_code == 401
            locked = await login(c, "alice", "guess")
            assert locked.status_code == 429
            assert 1 <= int(locked.headers["retry-after"]) <= 300
            assert locked.json()["error"] == "throttled"
            # Locked means locked: even the right password is refused, and no cookie set.
            right = await login(c, "alice")
            assert right.status_code == 429 and "set-cookie" not in right.headers
            # The same name in other case is the same account for the throttle.
            assert (await login(c, "ALICE", "guess")).status_code == 429
            # Another user from the same address is not affected.
            assert (await login(c, "bob")).status_code == 200


async def test_a_lock_out_ends_after_its_time(tmp_path):
    async with app_with(tmp_path, login_max_failures=2, login_lockout_seconds=1) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            c = await open_()
            for _ in range(2):
                assert (await login(c, "alice", "guess")).status_code == 401
            await anyio.sleep(1.1)  # just past the lock-out set by the last failure
            assert (await login(c, "alice")).status_code == 200


async def test_failures_from_one_address_lock_it_for_every_username(tmp_path):
    # An address may fail four times as often as a username before it is locked.
    async with app_with(tmp_path, login_max_failures=1) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            attacker = await open_(address="203.0.113.7")
            for n in range(4):  # a different username each time
                assert (await login(attacker, f"user{n}", "guess")).status_code == 401
            r = await login(attacker, "alice")
            assert r.status_code == 429
            assert int(r.headers["retry-after"]) >= 1
            # alice herself, from her own address, still signs in.
            elsewhere = await open_(address="198.51.100.20")
            assert (await login(elsewhere, "alice")).status_code == 200


async def test_a_successful_sign_in_resets_the_username_counter(tmp_path):
    async with app_with(tmp_path, login_max_failures=2) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            c = await open_()
            assert (await login(c, "alice", "guess")).status_code == 401
            assert (await login(c, "alice")).status_code == 200
            # Without the reset this would be the second failure: locked.
            assert (await login(c, "alice", "guess")).status_code == 401
            assert (await login(c, "alice")).status_code == 200
            for _ in range(2):
                assert (await login(c, "alice", "guess")).status_code == 401
            assert (await login(c, "alice")).status_code == 429


async def test_a_disabled_user_cannot_sign_in(app, client):
    alice = await add_user(app, "alice")
    async with app.state.store.transaction() as tx:
        await users.update(tx.conn, alice.id, disabled=True)
    disabled = await login(client, "alice")
    wrong = await login(client, "nobody", "whatever")
    assert disabled.status_code == 401
    assert disabled.json() == wrong.json()  # nothing tells the account exists
    assert "set-cookie" not in disabled.headers


# --- sessions ---------------------------------------------------------------------------------

async def test_logout_ends_the_session_on_the_server(app, browser):
    await add_user(app, "alice")
    c = await browser("alice")
    other = await browser("alice")  # a second session of the same user
    token = c.cookies[auth.COOKIE]
    assert (await c.get("/api/session")).status_code == 200

    r = await c.post("/api/logout")
    assert r.status_code == 200
    assert auth.COOKIE not in c.cookies  # the cookie is cleared...
    # ...and the old value is dead on the server too.
    r = await c.get("/api/session", headers=with_token(c, token))
    assert r.status_code == 401
    r = await c.post("/api/logout", headers=with_token(c, token))
    assert r.status_code == 401
    # The other session goes on.
    assert (await other.get("/api/session")).status_code == 200


async def test_changing_a_password_ends_all_sessions_of_that_user(app, browser):
    alice = await add_user(app, "alice")
    await add_user(app, "bob")
    await add_user(app, "root", "admin")
    alice1, alice2 = await browser("alice"), await browser("alice")
    bob, admin = await browser("bob"), await browser("root")

    r = await admin.patch(f"/api/users/{alice.id}", json={"password": "a brand new secret"})
    assert r.status_code == 200, r.text

    for c in (alice1, alice2):
        assert (await c.get("/api/tickets")).status_code == 401
    assert (await bob.get("/api/tickets")).status_code == 200
    assert (await admin.get("/api/users")).status_code == 200
    fresh = await browser()
    assert (await login(fresh, "alice")).status_code == 401
    assert (await login(fresh, "alice", "a brand new secret")).status_code == 200


async def test_disabling_a_user_ends_all_sessions_and_enabling_does_not_revive_them(app, browser):
    alice = await add_user(app, "alice")
    await add_user(app, "root", "admin")
    alice1, alice2 = await browser("alice"), await browser("alice")
    admin = await browser("root")

    r = await admin.patch(f"/api/users/{alice.id}", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    for c in (alice1, alice2):
        assert (await c.get("/api/session")).status_code == 401

    r = await admin.patch(f"/api/users/{alice.id}", json={"disabled": False})
    assert r.status_code == 200 and r.json()["disabled"] is False
    for c in (alice1, alice2):
        assert (await c.get("/api/session")).status_code == 401  # revoked for good
    assert (await login(await browser(), "alice")).status_code == 200


async def test_idle_sessions_expire_and_activity_keeps_them_alive(tmp_path, monkeypatch):
    # Write last_seen_at on every request so activity can be shown in a short test.
    monkeypatch.setattr(auth, "TOUCH_EVERY", dt.timedelta(0))
    idle_timeout = 1.0
    async with app_with(tmp_path, session_idle_seconds=idle_timeout) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            idle = await open_("alice")
            idle_since = time.monotonic()
            with anyio.fail_after(60):
                busy = await open_("alice")
                signed_in = previous = time.monotonic()
                while True:
                    await anyio.sleep(0.2)
                    sent = time.monotonic()
                    r = await busy.get("/api/session")
                    if time.monotonic() - previous < idle_timeout:
                        # Touched by the previous request less than the timeout ago.
                        assert r.status_code == 200
                    elif r.status_code == 401:  # a machine too slow to tell: sign in again
                        busy = await open_("alice")
                        signed_in = time.monotonic()
                    previous = sent
                    if r.status_code == 200 and sent - signed_in > idle_timeout:
                        break  # alive longer after sign-in than the idle timeout allows
            assert time.monotonic() - idle_since > idle_timeout
            assert (await idle.get("/api/session")).status_code == 401
            await anyio.sleep(idle_timeout + 0.1)
            assert (await busy.get("/api/session")).status_code == 401


async def test_idle_timeout_with_the_real_touch_interval(tmp_path):
    """last_seen_at is written at most every TOUCH_EVERY: an unused session still expires."""
    async with app_with(tmp_path, session_idle_seconds=0.5) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            c = await open_("alice")
            await anyio.sleep(0.6)
            assert (await c.get("/api/session")).status_code == 401
            assert (await c.post("/api/logout")).status_code == 401


async def test_sessions_end_at_their_absolute_lifetime_however_active(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "TOUCH_EVERY", dt.timedelta(0))
    lifetime = 1.5
    async with app_with(tmp_path, session_max_seconds=lifetime) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            before_login = time.monotonic()
            c = await open_("alice")
            token = c.cookies[auth.COOKIE]  # kept: the browser drops it at Max-Age
            with anyio.fail_after(lifetime + 30):
                while True:
                    r = await c.get("/api/session", headers=with_token(c, token))
                    if r.status_code != 200:
                        break
                    await anyio.sleep(0.2)
            # Not before its time (though active all along), and gone for good after it.
            assert time.monotonic() - before_login >= lifetime
            assert r.status_code == 401
            assert (await c.get("/api/session", headers=with_token(c, token))).status_code == 401
            assert (await login(c, "alice")).status_code == 200


# --- CSRF -------------------------------------------------------------------------------------

def _concrete(path: str) -> str:
    return path.replace("{id}", "999999" if "/integrations/" not in path else "nope")


STATE_CHANGING = [(m, p) for m, p, *_ in ENDPOINTS if m in ("post", "patch", "put", "delete")
                  and p != "/api/login"]


@pytest.mark.parametrize("presented", [None, "", "wrong-token"],
                         ids=["missing", "empty", "wrong"])
async def test_every_state_changing_request_needs_the_csrf_token(app, browser, presented):
    await add_user(app, "root", "admin")
    admin = await browser("root")
    good = admin.headers.pop("X-CSRF-Token")
    headers = {} if presented is None else {"X-CSRF-Token": presented}
    assert len(STATE_CHANGING) >= 10
    for method, path in STATE_CHANGING:
        r = await admin.request(method.upper(), _concrete(path), json={}, headers=headers)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.json()["error"] == "csrf", (method, path)
    # A token of another session is wrong too.
    other = await browser("root")
    r = await admin.post("/api/logout", headers={"X-CSRF-Token": other.headers["X-CSRF-Token"]})
    assert r.status_code == 403
    # Nothing happened: the session is alive; with its own token, logout works.
    assert (await admin.get("/api/session")).status_code == 200
    assert (await admin.post("/api/logout", headers={"X-CSRF-Token": good})).status_code == 200


async def test_csrf_refusal_changes_nothing(app, browser):
    alice = await add_user(app, "alice")
    await add_user(app, "root", "admin")
    admin = await browser("root")
    token = admin.headers.pop("X-CSRF-Token")
    r = await admin.patch(f"/api/users/{alice.id}", json={"disabled": True})
    assert r.status_code == 403
    r = await admin.post("/api/users", json={"username": "eve", "role": "admin",
                                             "password": "long enough pw"})
    assert r.status_code == 403
    users_now = (await admin.get("/api/users")).json()["users"]
    assert [u["username"] for u in users_now] == ["alice", "root"]
    assert not any(u["disabled"] for u in users_now)
    admin.headers["X-CSRF-Token"] = token
    r = await admin.patch(f"/api/users/{alice.id}", json={"disabled": True})
    assert r.status_code == 200


async def test_a_parallel_burst_of_guesses_cannot_pass_the_limit(tmp_path):
    # Attempts are counted before the (slow) password check, not after it.
    async with app_with(tmp_path, login_max_failures=5) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            c = await open_()
            answers = await asyncio.gather(*(login(c, "alice", f"guess-{n}")
                                             for n in range(20)))
            codes = sorted(r.status_code for r in answers)
            assert codes.count(401) == 5, codes
            assert codes.count(429) == 15, codes


async def test_a_parallel_burst_checks_no_more_guesses_than_the_limit(tmp_path):
    # The right password comes last: by then the first five guesses have locked the name.
    async with app_with(tmp_path, login_max_failures=5) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            c = await open_()
            answers = await asyncio.gather(*(login(c, "alice", f"guess-{n}") for n in range(19)),
                                           login(c, "alice"))
            assert answers[-1].status_code == 429 and "set-cookie" not in answers[-1].headers
            assert sorted(r.status_code for r in answers) == [401] * 5 + [429] * 15


async def test_parallel_right_sign_ins_all_succeed(tmp_path):
    # A right password never counts as a failure, however many arrive at once.
    async with app_with(tmp_path, login_max_failures=5) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            tabs = [await open_() for _ in range(10)]
            answers = await asyncio.gather(*(login(c, "alice") for c in tabs))
            assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers]
            assert len({cookie_attributes(r)[0] for r in answers}) == 10


async def test_parallel_failures_lock_as_one_after_another_do(tmp_path):
    async with app_with(tmp_path, login_max_failures=5) as application:
        await add_user(application, "alice")
        async with browsers(application) as open_:
            tabs = [await open_(address=f"198.51.100.{n}") for n in range(5)]
            answers = await asyncio.gather(*(login(c, "alice", f"guess-{n}")
                                             for n, c in enumerate(tabs)))
            assert [r.status_code for r in answers] == [401] * 5
            right = await login(await open_(address="192.0.2.1"), "alice")
            assert right.status_code == 429 and "set-cookie" not in right.headers


async def test_failures_on_two_instances_of_one_database_add_up(tmp_path):
    async with app_with(tmp_path, login_max_failures=4) as one:
        await add_user(one, "alice")
        two = create_app(one.state.settings)
        async with two.router.lifespan_context(two), browsers(one) as on_one, \
                browsers(two) as on_two:
            a, b = await on_one(), await on_two()
            answers = await asyncio.gather(*(login(c, "alice", "guess") for c in (a, b, a, b)))
            assert [r.status_code for r in answers] == [401] * 4
            assert (await login(a, "alice")).status_code == 429
            assert (await login(b, "alice")).status_code == 429
