"""Sessions ending or changing close their sockets: logout, a password change, disabling,
a session revoked by another instance, a role change. Scaffolding:
tests/realtime_helpers.py."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connector.accounts.security import hash_secret
from connector.storage.db import utcnow
from connector.storage.models import UserSession
from tests.conftest import PASSWORD
from tests.realtime_helpers import Stream, on_server

pytestmark = pytest.mark.anyio


async def test_logout_closes_that_sessions_socket_and_no_other(world):
    root = await world.person("root")
    alice1 = await world.person("alice")
    alice2 = await world.person("alice", create=False)
    alice3 = await world.person("alice", create=False)
    s1, s2, s3 = [await world.open(p) for p in (alice1, alice2, alice3)]
    s_root = await world.open(root)

    r = await alice1.http.post("/api/logout")
    assert r.status_code == 200
    assert await s1.close_code(within=5) == 4401
    ticket = await world.escalate("u-1")  # the other sessions' sockets are alive
    for s in (s2, s3):
        created = await s.until(lambda f: f["type"] == "ticket.created")
        assert created["ticket"]["id"] == ticket

    # A password change ends every session of the user, sockets included.
    r = await root.http.patch(f"/api/users/{alice2.user_id}",
                              json={"password": "another long secret"})
    assert r.status_code == 200
    for s in (s2, s3):
        assert await s.close_code(within=5) == 4401
    assert (await alice2.http.get("/api/session")).status_code == 401

    # Disabling does too; the admin's own socket stays open throughout.
    await world.person("bob")
    alice4 = await world.person("alice", create=False, password="another long secret")
    s4 = await world.open(alice4)
    r = await root.http.patch(f"/api/users/{alice4.user_id}", json={"disabled": True})
    assert r.status_code == 200
    assert await s4.close_code(within=5) == 4401
    await world.escalate("u-2")
    await s_root.until(lambda f: f["type"] == "ticket.created" and f["ticket"]["end_user"]
                       == "u-2")


async def test_a_session_ended_elsewhere_closes_its_socket_within_seconds(world):
    """Revoked straight in the database, as another instance's logout would: the socket
    watcher notices without any call into this process."""
    alice = await world.person("alice")
    other = await world.person("alice", create=False)
    s, s_other = await world.open(alice), await world.open(other)

    async def revoke() -> None:
        t = UserSession.__table__
        async with world.live.app.state.store.transaction() as tx:
            await tx.conn.execute(sa.update(t).where(t.c.id == hash_secret(alice.token))
                                  .values(revoked_at=utcnow()))

    await on_server(world.live, revoke())
    assert await s.close_code(within=8) == 4401
    await world.escalate("u-1")
    await s_other.until(lambda f: f["type"] == "ticket.created")


async def test_a_role_change_closes_sockets_so_they_reconnect_with_the_new_view(world):
    root = await world.person("root")
    sam = await world.person("sam")  # a supervisor: sees every ticket
    bob = await world.person("bob")
    s_sam = await world.open(sam)
    # Demoted by an admin: the socket opened as a supervisor must not keep that view.
    r = await root.http.patch(f"/api/users/{sam.user_id}", json={"role": "agent"})
    assert r.status_code == 200
    assert await s_sam.close_code(within=5) == 4003
    # The HTTP session goes on with the new role, and so does a new socket.
    assert (await sam.http.get("/api/queue")).status_code == 403
    sam.role = "agent"
    s_again = await world.open(sam)
    theirs = await world.claimed(bob, "u-bob")
    await world.turn("u-bob", "private words for bob")
    mine = await world.escalate("u-queue")
    seen = await s_again.until(lambda f: f["type"] == "ticket.created"
                               and f["ticket"]["id"] == mine)
    assert seen["ticket"]["id"] == mine
    assert not any(f["type"] == "message.created" and f["ticket"] == theirs
                   and f["message"]["text"] == "private words for bob"
                   for f in s_again.events())


async def test_a_password_to_change_refuses_the_stream_and_ones_own_change_ends_the_others(
        world):
    """Marked by an admin: signed out, and no stream (4403) until the password is changed
    (`POST /api/me/password`), which closes the user's other sockets and keeps this one."""
    root = await world.person("root")
    alice = await world.person("alice")
    r = await root.http.patch(f"/api/users/{alice.user_id}", json={"must_change_password": True})
    assert r.status_code == 200, r.text
    alice = await world.person("alice", create=False)
    refused = Stream(await world.connect(alice))
    assert await refused.close_code(within=5) == 4403

    r = await alice.http.post("/api/me/password", json={"current": PASSWORD,
                                                        "new": "another long secret"})
    assert r.status_code == 200, r.text
    here = await world.open(alice)
    other = await world.person("alice", create=False, password="another long secret")
    s_other = await world.open(other)
    r = await other.http.post("/api/me/password", json={"current": "another long secret",
                                                        "new": "a third long secret"})
    assert r.status_code == 200, r.text
    assert await here.close_code(within=8) == 4401  # the session that did not change it
    await world.escalate("u-1")
    await s_other.until(lambda f: f["type"] == "ticket.created")
