"""`GET /api/search` through the real app on SQLite and PostgreSQL: conversations made by
real Smartly webhooks, worked through the real API (claim, reply, note, resolve); the
same answers on both databases, accents and case ignored, an agent never finds what
`GET /api/tickets/{id}` would not show them, 422 naming the parameter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import builders
from tests.conftest import on_each_dialect, signed_in_staff
from tests.helpers import ok

pytestmark = pytest.mark.anyio


settings = on_each_dialect()
staff = signed_in_staff(("alice", "agent"), ("bob", "agent"), ("sam", "supervisor"))


async def hand_over(client: httpx.AsyncClient, bot: Any, user: str, text: str) -> int:
    r = await client.post(bot.smartly_path, json=builders.turn(user, text, need_help=True))
    assert r.status_code == 200, r.text
    return r.json()["ticket_id"]


async def say(client: httpx.AsyncClient, bot: Any, user: str, text: str) -> None:
    r = await client.post(bot.smartly_path, json=builders.turn(user, text, answer=None))
    assert r.status_code == 200, r.text


async def found(c: httpx.AsyncClient, q: str, **params: Any) -> list[tuple[int, str, str]]:
    """(ticket id, kind, the snippet's text) of every result, all pages, newest first."""
    out: list[tuple[int, str, str]] = []
    before = None
    while True:
        extra = {"before": before} if before else {}
        page = await ok(c.get("/api/search", params={"q": q, "limit": 2, **params, **extra}))
        out += [(r["ticket_id"], r["kind"], "".join(t for t, _ in r["snippet"]))
                for r in page["results"]]
        before = page["next_before"]
        if before is None:
            return out


async def test_search_by_role_with_accents(app: Any, client: httpx.AsyncClient, bot: Any,
                                           staff: dict[str, httpx.AsyncClient]) -> None:
    alice, bob, sam = staff["alice"], staff["bob"], staff["sam"]
    t1 = await hand_over(client, bot, "u-1", "Ma crème brûlée est arrivée froide")
    await ok(alice.post(f"/api/tickets/{t1}/claim"))
    await ok(alice.post(f"/api/tickets/{t1}/messages", json={"text": "Désolée pour la CRÈME"}))
    await ok(alice.post(f"/api/tickets/{t1}/notes", json={"text": "note: crème remboursée"}))
    await ok(alice.post(f"/api/tickets/{t1}/resolve", json={}))
    t2 = await hand_over(client, bot, "u-1", "Encore la creme, toujours froide")
    await ok(bob.post(f"/api/tickets/{t2}/claim"))
    await say(client, bot, "u-1", "Naïve question: is the creme vegan?")
    await ok(bob.post(f"/api/tickets/{t2}/notes", json={"text": "bob: crème again"}))
    t3 = await hand_over(client, bot, "u-2", "Crème renversée sur le clavier")

    everything = await found(sam, "creme")
    assert [(t, k) for t, k, _ in everything] == [
        (t3, "user"), (t2, "note"), (t2, "user"), (t2, "user"),
        (t1, "note"), (t1, "agent"), (t1, "user")]
    assert await found(sam, "CRÈME") == everything
    assert everything[2][2] == "Naïve question: is the creme vegan?"
    # Alice: her resolved ticket 1 (note included), the queued ticket 3 and the bot's
    # history (the turns that handed over, of no ticket: t2's shown under t1, the
    # ticket of hers she can open); never bob's reply or note.
    assert [(t, k) for t, k, _ in await found(alice, "creme")] == [
        (t3, "user"), (t1, "user"), (t1, "note"), (t1, "agent"), (t1, "user")]
    assert await found(alice, "vegan") == [] and await found(alice, "again") == []
    # Bob: his ticket 2 with its note, the queue, the bot's history; not alice's note or
    # reply.
    assert [(t, k) for t, k, _ in await found(bob, "creme")] == [
        (t3, "user"), (t2, "note"), (t2, "user"), (t2, "user"), (t2, "user")]
    assert await found(bob, "remboursee") == [] and await found(bob, "desolee") == []
    assert [t for t, _, _ in await found(sam, "froide", state="assigned")] == [t2]
    assert [t for t, _, _ in await found(sam, "froide", integration=bot.id)] == [t2, t1]
    assert await found(sam, "froide", integration="nope") == []
    assert await found(sam, "froide", **{"from": "2000-01-01", "to": "2000-01-02"}) == []
    await ok(sam.patch(f"/api/tickets/{t2}", json={"labels": ["Cold"]}))
    assert [t for t, _, _ in await found(sam, "froide", label="COLD")] == [t2]
    assert await found(sam, "froide", label="hot") == []
    r = await sam.get("/api/search", params={"q": "froide", "label": "x" * 51})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "label"

    for agent in (alice, bob):  # every hit is in the transcript the agent may open
        for word in ("creme", "froide", "vegan", "again", "remboursee", "desolee"):
            page = await ok(agent.get("/api/search", params={"q": word, "limit": 100}))
            for hit in page["results"]:
                detail = await ok(agent.get(f"/api/tickets/{hit['ticket_id']}"))
                assert hit["message_id"] in [m["id"] for m in detail["messages"]]

    page = await ok(sam.get("/api/search", params={"q": "brulee"}))
    (hit,) = page["results"]
    assert hit["ticket_id"] == t1 and hit["kind"] == "user"
    assert hit["snippet"] == [["Ma crème ", False], ["brûlée", True],
                              [" est arrivée froide", False]]
    detail = await ok(sam.get(f"/api/tickets/{t1}"))
    assert hit["message_id"] in [m["id"] for m in detail["messages"]]


async def test_bad_parameters_answer_422_naming_them(app: Any,
                                                     staff: dict[str, httpx.AsyncClient]) -> None:
    sam = staff["sam"]
    for params, field in [({}, "q"), ({"q": ""}, "q"), ({"q": "x" * 201}, "q"),
                          ({"q": "a b c d e f g h i"}, "q"),
                          ({"q": "x", "state": "gone"}, "state"),
                          ({"q": "x", "from": "soon"}, "from"),
                          ({"q": "x", "limit": "1000"}, "limit"),
                          ({"q": "x", "before": "x"}, "before")]:
        r = await sam.get("/api/search", params=params)
        assert r.status_code == 422, (params, r.text)
        assert [f["field"] for f in r.json()["fields"]] == [field], params
    for q in ['"', "NEAR(", "a OR", "x:*", "!&|", "*", "..."]:  # inert; no word: nothing
        assert (await ok(sam.get("/api/search", params={"q": q})))["next_before"] is None
