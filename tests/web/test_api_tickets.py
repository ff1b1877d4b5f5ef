"""The agent API for tickets through the real app: roles, visibility, actions, validation.

Tickets are opened the real way (Smartly webhooks into the app); replies go out
through the delivery worker to the fake channel, a real HTTP server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from starlette.routing import Route

from connector.realtime import stream
from connector.storage.db import utcnow
from connector.storage.models import Integration, Ticket
from connector.web.routes.openapi import ENDPOINTS
from tests import builders
from tests.conftest import add_user, sign_in
from tests.fakes import Reply
from tests.helpers import execute

pytestmark = pytest.mark.anyio

_t = Ticket.__table__
_integ = Integration.__table__

ROLES = {"alice": "agent", "bob": "agent", "sam": "supervisor", "root": "admin"}



Team = Callable[..., Awaitable[Any]]


@pytest.fixture
async def team(app: Any) -> AsyncIterator[Team]:
    """`await team("alice", "sam")`: create those users (roles from ROLES), each signed in
    with its own HTTP client (cookie + CSRF header). Returns the clients in order."""
    async with AsyncExitStack() as stack:

        async def make(*names: str) -> Any:
            out = []
            for name in names:
                await add_user(app, name, ROLES[name])
                out.append(await sign_in(stack, app, name))
            return out[0] if len(out) == 1 else out

        yield make


async def escalate(client: httpx.AsyncClient, bot: Any, end_user: str,
                   before: tuple[str, ...] = ("hello",), text: str = "I want a human") -> int:
    """A bot conversation of `before` turns, then a turn asking for a human: the ticket id."""
    for said in before:
        r = await client.post(bot.smartly_path, json=builders.turn(end_user, said))
        assert r.status_code == 200, r.text
    r = await client.post(bot.smartly_path, json=builders.turn(end_user, text, need_help=True))
    assert r.status_code == 200, r.text
    assert r.json()["ticket_opened"] is True
    return r.json()["ticket_id"]


async def claim(c: httpx.AsyncClient, ticket_id: int) -> httpx.Response:
    return await c.post(f"/api/tickets/{ticket_id}/claim")


async def ticket_ids(c: httpx.AsyncClient, **params: Any) -> set[int]:
    r = await c.get("/api/tickets", params={"per_page": 200, **params})
    assert r.status_code == 200, r.text
    return {t["id"] for t in r.json()["tickets"]}


async def until_delivery(c: httpx.AsyncClient, ticket_id: int, message_id: int,
                         state: str) -> dict[str, Any]:
    """Poll the transcript until that agent message's delivery reaches `state`."""
    with anyio.fail_after(10):
        while True:
            r = await c.get(f"/api/tickets/{ticket_id}")
            assert r.status_code == 200, r.text
            (msg,) = [m for m in r.json()["messages"] if m["id"] == message_id]
            if msg["delivery"]["state"] == state:
                return msg
            await anyio.sleep(0.05)


def fields(r: httpx.Response) -> list[str]:
    return [f["field"] for f in r.json().get("fields", [])]


# --- roles: every endpoint --------------------------------------------------------------------

ANY = frozenset({"agent", "supervisor", "admin"})
STAFF = frozenset({"supervisor", "admin"})
ADMIN = frozenset({"admin"})

#: (method, path) -> (roles allowed, JSON body, status for an allowed role).
#: Ids are unknown ones: an allowed role gets 404, a forbidden one 403 (role first,
#: so a forbidden caller cannot probe which ids exist). None: public, see test_auth.
MATRIX: dict[tuple[str, str], tuple[frozenset[str], Any, int] | None] = {
    ("post", "/api/login"): None,
    ("post", "/api/logout"): (ANY, None, 200),
    ("get", "/api/session"): (ANY, None, 200),
    ("get", "/api/me"): (ANY, None, 200),
    ("patch", "/api/me"): (ANY, {"status": "away"}, 200),
    # Authorised, then refused for the wrong current password (nothing changes).
    ("post", "/api/me/password"): (ANY, {"current": "not it at all", "new": "a new one!"}, 422),
    ("get", "/api/tickets"): (ANY, None, 200),
    ("get", "/api/tickets/{id}"): (ANY, None, 404),
    ("patch", "/api/tickets/{id}"): (ANY, {"labels": ["x"]}, 404),
    ("get", "/api/tickets/{id}/history"): (ANY, None, 404),
    ("get", "/api/labels"): (ANY, None, 200),
    ("post", "/api/tickets/{id}/claim"): (ANY, None, 404),
    ("post", "/api/tickets/{id}/messages"): (ANY, {"text": "hi"}, 404),
    ("post", "/api/tickets/{id}/notes"): (ANY, {"text": "hi"}, 404),
    ("post", "/api/tickets/{id}/transfer"): (ANY, {"to": None}, 404),
    ("post", "/api/tickets/{id}/resolve"): (ANY, {}, 404),
    ("post", "/api/tickets/{id}/handback"): (ANY, {}, 404),
    ("post", "/api/messages/{id}/resend"): (ANY, None, 404),
    ("get", "/api/agents"): (ANY, None, 200),
    ("get", "/api/search"): (ANY, None, 422),  # q is required
    ("get", "/api/queue"): (STAFF, None, 200),
    ("get", "/api/queue/history"): (STAFF, None, 200),
    ("get", "/api/reports/tickets.csv"): (STAFF, None, 422),  # from and to are required
    ("get", "/api/reports/tickets"): (STAFF, None, 422),
    ("get", "/api/integrations"): (ADMIN, None, 200),
    ("post", "/api/integrations"): (ADMIN, {}, 422),
    ("get", "/api/integrations/{id}"): (ADMIN, None, 404),
    ("patch", "/api/integrations/{id}"): (ADMIN, {"name": "x"}, 404),
    ("post", "/api/integrations/{id}/rotate-key"): (ADMIN, None, 404),
    ("post", "/api/integrations/{id}/rotate-signing-secret"): (ADMIN, None, 404),
    ("get", "/api/integrations/{id}/deliveries"): (ADMIN, None, 404),
    ("post", "/api/integrations/{id}/test"): (ADMIN, {"recipient": "u", "text": "t"}, 404),
    ("post", "/api/integrations/{id}/disable"): (ADMIN, None, 404),
    ("post", "/api/integrations/{id}/enable"): (ADMIN, None, 404),
    ("delete", "/api/integrations/{id}"): (ADMIN, None, 404),
    ("get", "/api/audit"): (ADMIN, None, 200),
    ("post", "/api/end-users/erase"): (ADMIN, {"integration": "nope", "end_user": "u"}, 404),
    ("get", "/api/webhooks"): (ADMIN, None, 200),
    ("post", "/api/webhooks"): (ADMIN, {}, 422),
    ("get", "/api/webhooks/{id}"): (ADMIN, None, 404),
    ("patch", "/api/webhooks/{id}"): (ADMIN, {"disabled": True}, 404),
    ("delete", "/api/webhooks/{id}"): (ADMIN, None, 404),
    ("post", "/api/webhooks/{id}/rotate-secret"): (ADMIN, None, 404),
    ("post", "/api/webhooks/{id}/test"): (ADMIN, None, 404),
    ("get", "/api/webhooks/{id}/deliveries"): (ADMIN, None, 404),
    ("post", "/api/webhook-deliveries/{id}/resend"): (ADMIN, None, 404),
    ("get", "/api/users"): (ADMIN, None, 200),
    ("post", "/api/users"): (ADMIN, {}, 422),
    ("patch", "/api/users/{id}"): (ADMIN, {"disabled": False}, 404),
    ("get", "/api/canned-responses"): (ANY, None, 200),
    ("post", "/api/canned-responses"): (ANY, {}, 422),
    ("patch", "/api/canned-responses/{id}"): (ANY, {"text": "x"}, 404),
    ("delete", "/api/canned-responses/{id}"): (ANY, None, 404),
}


def api_routes(app: Any) -> set[tuple[str, str]]:
    out = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/") and route.methods:
            path = route.path.replace("{id:int}", "{id}")
            out |= {(m.lower(), path) for m in route.methods if m != "HEAD"}
    out.discard(("get", "/api/openapi.json"))  # public description, no data
    return out


async def test_the_matrix_covers_every_api_endpoint(app):
    assert set(MATRIX) == api_routes(app)
    assert set(MATRIX) == {(m, p) for m, p, *_ in ENDPOINTS}


#: Every action on a ticket: (path after the ticket's or message's URL, body).
ACTIONS = {
    "claim": ("claim", None),
    "reply": ("messages", {"text": "hi"}),
    "note": ("notes", {"text": "hi"}),
    "take": ("transfer", {"to": "alice"}),
    "transfer": ("transfer", {"to": "sam"}),
    "release": ("transfer", {"to": None}),
    "resolve": ("resolve", {"closing_message": "bye"}),
    "handback": ("handback", {"closing_message": "bye"}),
    "resend": ("resend", None),
}


@pytest.mark.parametrize("state", ["assigned", "resolved"])
@pytest.mark.parametrize("action", ACTIONS)
async def test_an_action_on_a_ticket_one_may_not_see_is_answered_as_reading_it(
        app, client, bot, team, action, state):
    # The rule (README, `roles.can_see`): an agent sees the queue and their own tickets.
    alice, bob, sam = await team("alice", "bob", "sam")
    ticket = await escalate(client, bot, "u-1")
    assert (await claim(bob, ticket)).status_code == 200
    r = await bob.post(f"/api/tickets/{ticket}/messages", json={"text": "hello"})
    assert r.status_code == 201, r.text
    message = r.json()["id"]
    if state == "resolved":
        assert (await bob.post(f"/api/tickets/{ticket}/resolve", json={})).status_code == 200

    async def seen_by_sam() -> Any:
        t = (await sam.get(f"/api/tickets/{ticket}")).json()
        return (t["state"], t["assignee"], t["transitions"],
                [(m["kind"], m["text"]) for m in t["messages"]])

    before = await seen_by_sam()
    read = await alice.get(f"/api/tickets/{ticket}")
    assert read.status_code == 403

    path, body = ACTIONS[action]
    url = (f"/api/messages/{message}/{path}" if action == "resend"
           else f"/api/tickets/{ticket}/{path}")
    r = await alice.post(url, **({} if body is None else {"json": body}))
    assert (r.status_code, r.json()) == (read.status_code, read.json()), r.text
    assert "bob" not in r.text
    assert await seen_by_sam() == before  # nothing changed
    if action != "resend":  # an unknown ticket: GET's 404
        r = await alice.post(f"/api/tickets/999999/{path}", **({} if body is None
                                                               else {"json": body}))
        missing = await alice.get("/api/tickets/999999")
        assert (r.status_code, r.json()) == (missing.status_code, missing.json()) == (
            404, {"error": "not_found", "message": "no such ticket"})


async def test_every_endpoint_is_authorised_by_role(app, client, team):
    agent, supervisor, admin = await team("alice", "sam", "root")
    by_role = {"agent": agent, "supervisor": supervisor, "admin": admin}
    for (method, template), expected in MATRIX.items():
        if expected is None or template == "/api/logout":
            continue
        roles, body, ok_status = expected
        path = template.replace("{id}", "nope" if "/integrations/" in template else "999999")
        kw = {} if body is None else {"json": body}
        r = await client.request(method.upper(), path, **kw)  # no cookie at all
        assert r.status_code == 401, (method, path, "anonymous", r.text)
        for role, c in by_role.items():
            r = await c.request(method.upper(), path, **kw)
            want = ok_status if role in roles else 403
            assert r.status_code == want, (method, path, role, r.status_code, r.text)
            if want == 403:
                assert r.json()["error"] == "forbidden"
    # Logout last: every role may end its own session, anonymous may not.
    assert (await client.post("/api/logout")).status_code == 401
    for c in by_role.values():
        assert (await c.post("/api/logout")).status_code == 200
        assert (await c.get("/api/session")).status_code == 401


async def test_an_agent_cannot_read_or_act_on_another_agents_ticket(app, client, bot, team):
    alice, bob, sam = await team("alice", "bob", "sam")
    secret = "my card number is 4111 SECRET"
    ticket = await escalate(client, bot, "u-secret", before=(secret,), text="help SECRET")
    assert (await claim(bob, ticket)).status_code == 200
    r = await bob.post(f"/api/tickets/{ticket}/messages", json={"text": "bob here SECRET"})
    assert r.status_code == 201
    bobs_message = r.json()["id"]

    attempts = [
        await alice.get(f"/api/tickets/{ticket}"),
        await claim(alice, ticket),
        await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "hi"}),
        await alice.post(f"/api/tickets/{ticket}/notes", json={"text": "hi"}),
        await alice.post(f"/api/tickets/{ticket}/transfer", json={"to": "alice"}),
        await alice.post(f"/api/tickets/{ticket}/transfer", json={"to": None}),
        await alice.post(f"/api/tickets/{ticket}/resolve", json={"closing_message": "bye"}),
        await alice.post(f"/api/messages/{bobs_message}/resend"),
    ]
    for r in attempts:
        assert r.status_code == 403, (r.request.url, r.text)
        assert "SECRET" not in r.text and "u-secret" not in r.text
        assert "4111" not in r.text and "bob" not in r.text

    assert ticket not in await ticket_ids(alice)
    full = await sam.get(f"/api/tickets/{ticket}")
    assert full.status_code == 200 and secret in full.text  # the supervisor sees it all
    # Nothing alice tried changed the ticket.
    assert full.json()["assignee"] == "bob" and full.json()["state"] == "assigned"
    assert [m["kind"] for m in full.json()["messages"]].count("note") == 0


async def test_ticket_lists_agents_see_queue_and_own_staff_see_all(app, client, bot, team):
    alice, bob, sam, root = await team("alice", "bob", "sam", "root")
    t = [await escalate(client, bot, f"u-{n}", before=()) for n in range(6)]
    assert (await claim(alice, t[0])).status_code == 200
    assert (await claim(bob, t[1])).status_code == 200
    r = await sam.post(f"/api/tickets/{t[2]}/transfer", json={"to": "bob"})  # assign
    assert r.status_code == 200 and r.json()["assignee"] == "bob"
    assert (await claim(alice, t[3])).status_code == 200
    r = await alice.post(f"/api/tickets/{t[3]}/resolve", json={})
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    queued = {t[4], t[5]}

    assert await ticket_ids(alice) == queued | {t[0], t[3]}
    assert await ticket_ids(bob) == queued | {t[1], t[2]}
    assert await ticket_ids(sam) == await ticket_ids(root) == set(t)

    assert await ticket_ids(alice, state="queued") == queued
    assert await ticket_ids(alice, state="assigned") == {t[0]}
    assert await ticket_ids(alice, state="resolved") == {t[3]}
    assert await ticket_ids(bob, state="assigned") == {t[1], t[2]}
    assert await ticket_ids(bob, state="resolved") == set()
    assert await ticket_ids(sam, state="assigned") == {t[0], t[1], t[2]}

    listed = {x["id"]: x for x in (await alice.get("/api/tickets")).json()["tickets"]}
    mine = listed[t[0]]
    for key in ("id", "state", "end_user", "lang", "platform", "category", "opened_at",
                "claimed_at", "resolved_at", "assignee", "wait_seconds"):
        assert key in mine, key
    assert (mine["state"], mine["end_user"], mine["assignee"]) == ("assigned", "u-0", "alice")
    assert (mine["lang"], mine["platform"]) == ("fr-fr", "webchat")
    assert mine["claimed_at"] is not None and mine["resolved_at"] is None
    assert mine["wait_seconds"] >= 0
    waiting = listed[t[4]]
    assert waiting["assignee"] is None and waiting["claimed_at"] is None
    assert waiting["wait_seconds"] >= 0
    assert listed[t[3]]["resolved_at"] is not None


async def test_ticket_list_pagination(app, client, bot, team):
    sam = await team("sam")
    created = [await escalate(client, bot, f"u-{n}", before=()) for n in range(5)]
    seen: list[int] = []
    for page, size in ((1, 2), (2, 2), (3, 1)):
        r = await sam.get("/api/tickets", params={"page": page, "per_page": 2})
        assert r.status_code == 200
        body = r.json()
        assert (body["page"], body["per_page"], body["total"]) == (page, 2, 5)
        assert len(body["tickets"]) == size
        seen += [x["id"] for x in body["tickets"]]
    assert sorted(seen) == sorted(created)  # every ticket once, none twice
    r = await sam.get("/api/tickets", params={"page": 4, "per_page": 2})
    assert r.json()["tickets"] == [] and r.json()["total"] == 5
    # The queue is oldest first.
    r = await sam.get("/api/tickets", params={"state": "queued"})
    assert [x["id"] for x in r.json()["tickets"]] == created
    for params, field in (({"per_page": 0}, "per_page"), ({"per_page": 201}, "per_page"),
                          ({"page": 0}, "page"), ({"page": "x"}, "page"),
                          ({"state": "open"}, "state")):
        r = await sam.get("/api/tickets", params=params)
        assert r.status_code == 422, params
        assert fields(r) == [field]


async def test_queue_overview_for_supervisors(app, client, bot, team):
    alice, bob, sam = await team("alice", "bob", "sam")
    t = [await escalate(client, bot, f"u-{n}", before=()) for n in range(4)]
    assert (await claim(bob, t[0])).status_code == 200
    assert (await claim(bob, t[1])).status_code == 200
    assert (await alice.get("/api/queue")).status_code == 403
    r = await sam.get("/api/queue")
    assert r.status_code == 200
    q = r.json()
    assert q["waiting"] == 2
    assert q["oldest_wait_seconds"] is not None and q["oldest_wait_seconds"] >= 0
    assert q["tickets_per_agent"] == {"bob": 2}
    online = {a["username"]: a for a in q["agents_online"]}
    assert {"alice", "bob", "sam"} <= set(online)
    assert online["bob"]["open_tickets"] == 2 and online["alice"]["open_tickets"] == 0


async def test_queue_by_category_and_language_with_first_response_breaches(app, client, bot,
                                                                            team):
    alice, sam = await team("alice", "sam")
    opened = []
    for n, (category, lang) in enumerate([("billing", "fr-fr"), ("billing", "en-gb"),
                                          ("", "fr-fr"), ("returns", None)]):
        extra = {"lang": lang} if lang else {"lang": ""}
        r = await client.post(bot.smartly_path, json=builders.turn(
            f"g-{n}", "help", need_help=True, handover_category_name=category, **extra))
        opened.append(r.json()["ticket_id"])
    assert (await claim(alice, opened[3])).status_code == 200  # no longer waiting
    # the first two opened long ago (the oldest wait first)
    await execute(app, sa.update(_t).where(_t.c.id == opened[0]).values(
        opened_at=utcnow() - dt.timedelta(seconds=600)))
    await execute(app, sa.update(_t).where(_t.c.id == opened[1]).values(
        opened_at=utcnow() - dt.timedelta(seconds=300)))
    q = (await sam.get("/api/queue")).json()
    cats = [(g["key"], g["waiting"]) for g in q["by_category"]]
    assert cats == [("billing", 2), (None, 1)]
    assert q["by_category"][0]["oldest_wait_seconds"] >= 600
    langs = {g["key"]: (g["waiting"], g["oldest_wait_seconds"]) for g in q["by_language"]}
    assert set(langs) == {"fr-fr", "en-gb"}
    assert langs["fr-fr"][0] == 2 and langs["fr-fr"][1] >= 600
    assert 300 <= langs["en-gb"][1] < 600
    # the default target is 120 s: both old tickets are past it, unanswered
    assert q["first_response_targets"] == {bot.id: 120}
    assert (q["first_response_breaches"], q["breaching"]) == (2, sorted(opened[:2]))
    # answered: no longer a breach; a target of 0 means none
    assert (await claim(alice, opened[1])).status_code == 200
    r = await alice.post(f"/api/tickets/{opened[1]}/messages", json={"text": "hi"})
    assert r.status_code == 201, r.text
    q = (await sam.get("/api/queue")).json()
    assert q["breaching"] == [opened[0]]
    await execute(app, sa.update(_integ).where(_integ.c.id == bot.id).values(
        first_response_target_seconds=0))
    q = (await sam.get("/api/queue")).json()
    assert (q["first_response_breaches"], q["breaching"]) == (0, [])


# --- ticket actions ---------------------------------------------------------------------------

async def test_claim_and_conflicts(app, client, bot, team):
    alice, bob, sam = await team("alice", "bob", "sam")
    ticket = await escalate(client, bot, "u-1")
    r = await claim(alice, ticket)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["assignee"]) == ("assigned", "alice")
    assert r.json()["claimed_at"] is not None
    assert (await claim(alice, ticket)).status_code == 200  # idempotent for the holder
    # A supervisor, who may see the ticket, is told who holds it ...
    r = await claim(sam, ticket)
    assert r.status_code == 409, r.text
    assert (r.json()["error"], r.json()["assignee"]) == ("conflict", "alice")
    # ... an agent, who may not, gets what reading it gets: 403, not a word of who.
    r = await claim(bob, ticket)
    assert r.status_code == 403, r.text
    assert r.json() == (await bob.get(f"/api/tickets/{ticket}")).json()
    assert "alice" not in r.text
    r = await alice.get(f"/api/tickets/{ticket}")
    assert r.json()["assignee"] == "alice"


async def test_concurrent_claims_exactly_one_wins(app, client, bot, team):
    alice, bob = await team("alice", "bob")
    names = {id(alice): "alice", id(bob): "bob"}
    for n in range(5):
        ticket = await escalate(client, bot, f"u-{n}", before=())
        first, second = (alice, bob) if n % 2 else (bob, alice)
        results = await asyncio.gather(claim(first, ticket), claim(second, ticket))
        statuses = sorted(r.status_code for r in results)
        # The loser may no longer see the ticket: 403, as a GET of it answers.
        assert statuses == [200, 403], [r.text for r in results]
        winner = next(c for c, r in zip((first, second), results, strict=True)
                      if r.status_code == 200)
        loser = next(r for r in results if r.status_code == 403)
        assert loser.json() == {"error": "forbidden", "message": "not allowed to see this ticket"}
        r = await winner.get(f"/api/tickets/{ticket}")
        assert r.json()["assignee"] == names[id(winner)]
        assert [m["text"] for m in r.json()["messages"]].count(
            f"{names[id(winner)]} joined") == 1


async def test_only_the_assignee_replies_and_the_reply_reaches_the_channel(
        app, client, bot, channel, team):
    alice, bob, sam = await team("alice", "bob", "sam")
    ticket = await escalate(client, bot, "u-77")
    r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "not yet mine"})
    assert r.status_code == 409  # queued: claim first
    assert (await claim(alice, ticket)).status_code == 200
    r = await bob.post(f"/api/tickets/{ticket}/messages", json={"text": "hi"})
    assert r.status_code == 403
    r = await sam.post(f"/api/tickets/{ticket}/messages", json={"text": "hi"})
    assert r.status_code == 409  # a supervisor sees it but is not the assignee

    r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "Bonjour, Alice ici"})
    assert r.status_code == 201, r.text
    msg = r.json()
    assert (msg["kind"], msg["text"], msg["author"]) == ("agent", "Bonjour, Alice ici", "alice")
    assert msg["ticket_id"] == ticket and msg["message"] == {"text": "Bonjour, Alice ici"}
    assert msg["delivery"]["state"] == "queued" and msg["delivery"]["attempts"] == 0

    (got,) = await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert got.body["recipient"] == {"id": "u-77"}
    assert got.body["message"] == {"text": "Bonjour, Alice ici"}
    delivered = await until_delivery(alice, ticket, msg["id"], "delivered")
    assert delivered["delivery"]["last_status"] == 200
    assert delivered["delivery"]["delivered_at"] is not None


async def test_notes_are_in_the_transcript_and_never_reach_the_channel(
        app, client, bot, channel, team):
    alice, bob, sam = await team("alice", "bob", "sam")
    ticket = await escalate(client, bot, "u-5")
    assert (await claim(alice, ticket)).status_code == 200
    r = await alice.post(f"/api/tickets/{ticket}/notes", json={"text": "VIP, be nice"})
    assert r.status_code == 201, r.text
    note = r.json()
    assert (note["kind"], note["text"], note["author"]) == ("note", "VIP, be nice", "alice")
    assert "delivery" not in note
    r = await sam.post(f"/api/tickets/{ticket}/notes", json={"text": "supervisor note"})
    assert r.status_code == 201
    assert (await bob.post(f"/api/tickets/{ticket}/notes", json={"text": "x"})).status_code == 403
    # A reply queued after the notes: once it is delivered, the notes would have been too.
    r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "the reply"})
    assert r.status_code == 201
    await until_delivery(alice, ticket, r.json()["id"], "delivered")
    assert channel.texts() == ["the reply"]
    assert len(channel.received) == 1
    transcript = (await alice.get(f"/api/tickets/{ticket}")).json()["messages"]
    notes = [m for m in transcript if m["kind"] == "note"]
    assert [n["text"] for n in notes] == ["VIP, be nice", "supervisor note"]
    assert all("delivery" not in n for n in notes)


async def test_transfer_to_a_colleague_and_back_to_the_queue(app, client, bot, team):
    alice, bob, sam = await team("alice", "bob", "sam")
    ticket = await escalate(client, bot, "u-9")
    assert (await claim(alice, ticket)).status_code == 200

    r = await alice.post(f"/api/tickets/{ticket}/transfer", json={"to": "nobody"})
    assert r.status_code == 422 and fields(r) == ["to"]
    r = await alice.post(f"/api/tickets/{ticket}/transfer", json={"to": "bob"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["assignee"]) == ("assigned", "bob")
    assert (await alice.get(f"/api/tickets/{ticket}")).status_code == 403  # no longer hers
    assert (await bob.get(f"/api/tickets/{ticket}")).status_code == 200
    r = await alice.post(f"/api/tickets/{ticket}/transfer", json={"to": "alice"})
    assert r.status_code == 403  # she cannot take it back

    r = await bob.post(f"/api/tickets/{ticket}/transfer", json={"to": None})
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["assignee"]) == ("queued", None)
    assert (await alice.get(f"/api/tickets/{ticket}")).status_code == 200  # in the queue

    # A supervisor assigns from the queue.
    r = await sam.post(f"/api/tickets/{ticket}/transfer", json={"to": "alice"})
    assert r.status_code == 200 and r.json()["assignee"] == "alice"
    transitions = (await sam.get(f"/api/tickets/{ticket}")).json()["transitions"]
    assert [t["action"] for t in transitions] == [
        "opened", "claimed", "transferred", "requeued", "assigned"]
    assert transitions[2]["assignee"] == "bob" and transitions[2]["actor"] == "alice"


async def test_resolve_with_a_closing_message_delivers_it(app, client, bot, channel, team):
    alice, sam = await team("alice", "sam")
    ticket = await escalate(client, bot, "u-3")
    assert (await claim(alice, ticket)).status_code == 200
    r = await alice.post(f"/api/tickets/{ticket}/resolve",
                         json={"closing_message": "Merci, bonne journée"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved" and r.json()["resolved_at"] is not None
    (got,) = await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert got.body["message"] == {"text": "Merci, bonne journée"}
    transcript = (await alice.get(f"/api/tickets/{ticket}")).json()["messages"]
    closing = [m for m in transcript if m["kind"] == "agent"]
    assert [m["text"] for m in closing] == ["Merci, bonne journée"]
    await until_delivery(alice, ticket, closing[0]["id"], "delivered")
    assert transcript[-1]["kind"] == "system"

    assert (await alice.post(f"/api/tickets/{ticket}/resolve", json={})).status_code == 409
    r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "still there?"})
    assert r.status_code == 409
    # A supervisor closing a ticket nobody took: abandoned, nothing sent.
    other = await escalate(client, bot, "u-4", before=())
    r = await sam.post(f"/api/tickets/{other}/resolve", json={})
    assert r.status_code == 200 and r.json()["state"] == "abandoned"
    assert len(channel.received) == 1


async def test_resend_a_failed_delivery(app, client, bot, channel, team):
    alice, bob = await team("alice", "bob")
    channel.script = [Reply(400)]  # refused for good the first time
    ticket = await escalate(client, bot, "u-8")
    assert (await claim(alice, ticket)).status_code == 200
    r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "try me"})
    assert r.status_code == 201
    message_id = r.json()["id"]
    failed = await until_delivery(alice, ticket, message_id, "failed")
    assert failed["delivery"]["last_status"] == 400
    assert channel.delivered == []

    assert (await bob.post(f"/api/messages/{message_id}/resend")).status_code == 403
    assert (await alice.post("/api/messages/999999/resend")).status_code == 404
    r = await alice.post(f"/api/messages/{message_id}/resend")
    assert r.status_code == 200, r.text
    assert r.json()["message_id"] == message_id
    assert r.json()["delivery"]["state"] == "queued"
    (got,) = await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert got.body["message"] == {"text": "try me"}
    await until_delivery(alice, ticket, message_id, "delivered")
    r = await alice.post(f"/api/messages/{message_id}/resend")
    assert r.status_code == 409  # only failed deliveries can be re-sent
    # Everyone watching the ticket saw it go failed -> queued (resend) -> delivered.
    async with app.state.store.read() as conn:
        events = await stream.read_after(conn, 0, limit=1000)
    states = [e.payload["delivery"]["state"] for e in events
              if e.type == "delivery.updated" and e.payload["message_id"] == message_id]
    assert states == ["failed", "queued", "delivered"]


async def test_bodies_are_validated_naming_the_field(app, client, bot, team):
    alice = await team("alice")
    ticket = await escalate(client, bot, "u-1")
    assert (await claim(alice, ticket)).status_code == 200
    base = f"/api/tickets/{ticket}"
    cases: list[tuple[str, Any, str]] = []
    for endpoint in ("messages", "notes"):
        cases += [
            (endpoint, {"text": ""}, "text"),
            (endpoint, {"text": "   \n\t "}, "text"),
            (endpoint, {"text": "x" * 4001}, "text"),
            (endpoint, {"text": 5}, "text"),
            (endpoint, {"text": None}, "text"),
            (endpoint, {}, "text"),
            (endpoint, {"text": "hi", "html": "<b>hi</b>"}, "html"),
            (endpoint, ["hi"], "body"),
        ]
    cases += [
        ("transfer", {}, "to"),
        ("transfer", {"to": 5}, "to"),
        ("transfer", {"to": "bob", "note": "x"}, "note"),
        ("resolve", {"closing_message": "x" * 4001}, "closing_message"),
        ("resolve", {"closing_message": 5}, "closing_message"),
        ("resolve", {"close": True}, "close"),
    ]
    for endpoint, body, field in cases:
        r = await alice.post(f"{base}/{endpoint}", json=body)
        assert r.status_code == 422, (endpoint, body, r.status_code)
        assert r.json()["error"] == "invalid"
        assert field in fields(r), (endpoint, body, r.json())
        assert field in r.json()["message"]
    for endpoint in ("messages", "notes", "transfer", "resolve"):
        for raw in (b"{not json", b"", b'{"text": "unterminated'):
            r = await alice.post(f"{base}/{endpoint}", content=raw,
                                 headers={"content-type": "application/json"})
            assert r.status_code == 400, (endpoint, raw)
            assert r.json()["error"] == "malformed_json"
    # Nothing above was stored; exactly 4,000 characters is fine.
    transcript = (await alice.get(base)).json()["messages"]
    assert [m["kind"] for m in transcript if m["kind"] in ("agent", "note")] == []
    r = await alice.post(f"{base}/messages", json={"text": "x" * 4000})
    assert r.status_code == 201


async def test_ticket_detail_has_the_whole_transcript(app, client, bot, channel, team):
    alice = await team("alice")
    first = builders.turn("u-42", "bonjour", answer="Bonjour ! Que puis-je faire ?")
    second = builders.turn("u-42", "je veux un humain", answer="Je vous passe un conseiller",
                           need_help=True)
    for body in (first, second):
        r = await client.post(bot.smartly_path, json=body)
        assert r.status_code == 200
    ticket = r.json()["ticket_id"]
    assert (await claim(alice, ticket)).status_code == 200
    r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "Alice ici"})
    reply_id = r.json()["id"]
    await alice.post(f"/api/tickets/{ticket}/notes", json={"text": "client fidèle"})
    later = builders.turn("u-42", "merci", answer=None)
    assert (await client.post(bot.smartly_path, json=later)).status_code == 200
    await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    await until_delivery(alice, ticket, reply_id, "delivered")

    r = await alice.get(f"/api/tickets/{ticket}")
    assert r.status_code == 200
    out = r.json()
    assert (out["id"], out["state"], out["assignee"], out["end_user"]) == (
        ticket, "assigned", "alice", "u-42")
    messages = out["messages"]
    assert [(m["kind"], m["text"]) for m in messages] == [
        ("user", "bonjour"), ("bot", "Bonjour ! Que puis-je faire ?"),
        ("user", "je veux un humain"), ("bot", "Je vous passe un conseiller"),
        ("system", messages[4]["text"]), ("system", "alice joined"),
        ("agent", "Alice ici"), ("note", "client fidèle"), ("user", "merci"),
    ]
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for m in messages:
        assert m["created_at"] is not None
        assert ("delivery" in m) == (m["kind"] == "agent")
    # The original objects: the whole webhook body of user turns, the bot's message object.
    assert messages[0]["raw"] == first and messages[2]["raw"] == second
    assert messages[8]["raw"] == later
    assert messages[1]["message"] == {"text": "Bonjour ! Que puis-je faire ?"}
    assert messages[6]["message"] == {"text": "Alice ici"}
    assert messages[6]["author"] == "alice"
    assert messages[6]["delivery"]["state"] == "delivered"
    assert messages[0]["context"]["intent"] == first["payload"]["intent"]


async def test_an_agent_does_not_read_a_colleagues_earlier_handover_of_the_same_user(
        app, client, bot, team):
    alice, bob = await team("alice", "bob")
    first = await escalate(client, bot, "u-5")
    assert (await claim(alice, first)).status_code == 200
    r = await alice.post(f"/api/tickets/{first}/notes", json={"text": "alice's private note"})
    assert r.status_code == 201
    assert (await alice.post(f"/api/tickets/{first}/resolve", json={})).status_code == 200
    # The same end user escalates again: the new ticket is in everyone's queue.
    second = await escalate(client, bot, "u-5", before=())
    r = await bob.get(f"/api/tickets/{second}")
    assert r.status_code == 200
    texts = [m["text"] for m in r.json()["messages"]]
    assert "alice's private note" not in texts
    assert all(m["ticket_id"] in (None, second) for m in r.json()["messages"])
    # alice, who handled the first one, still sees her own history with this user.
    r = await alice.get(f"/api/tickets/{second}")
    assert "alice's private note" in [m["text"] for m in r.json()["messages"]]
