"""Canned responses through the real app: who reads and manages which, validation,
unique shortcuts per scope and owner."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import on_each_dialect
from tests.web.test_api_tickets import team  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio

URL = "/api/canned-responses"


settings = on_each_dialect()


async def create(c: Any, shortcut: str, text: str, scope: str = "personal") -> Any:
    return await c.post(URL, json={"shortcut": shortcut, "text": text, "scope": scope})


async def shortcuts(c: Any) -> list[tuple[str, str, bool]]:
    r = await c.get(URL)
    assert r.status_code == 200, r.text
    return [(x["scope"], x["shortcut"], x["editable"]) for x in r.json()["canned_responses"]]


async def test_staff_manage_shared_everyone_their_own(app, team):  # noqa: F811
    alice, bob, sam, root = await team("alice", "bob", "sam", "root")
    r = await create(sam, "Hello", "Hello, I am {agent}. How can I help, {end_user}?", "shared")
    assert r.status_code == 201, r.text
    shared = r.json()
    assert (shared["shortcut"], shared["scope"], shared["editable"]) == ("hello", "shared", True)
    assert (await create(root, "bye", "Goodbye!", "shared")).status_code == 201
    r = await create(alice, "mine", "Alice's own")
    assert r.status_code == 201 and r.json()["scope"] == "personal"
    alices = r.json()["id"]
    # Personal is the default scope.
    r = await alice.post(URL, json={"shortcut": "other", "text": "x"})
    assert r.status_code == 201 and r.json()["scope"] == "personal"

    # An agent may not add, change or delete a shared one.
    r = await create(alice, "nope", "x", "shared")
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert (await alice.patch(f"{URL}/{shared['id']}", json={"text": "x"})).status_code == 403
    assert (await alice.delete(f"{URL}/{shared['id']}")).status_code == 403

    # Everyone reads the shared ones and their own; nobody another's personal ones.
    assert await shortcuts(alice) == [("shared", "bye", False), ("shared", "hello", False),
                                      ("personal", "mine", True), ("personal", "other", True)]
    assert await shortcuts(bob) == [("shared", "bye", False), ("shared", "hello", False)]
    assert await shortcuts(sam) == [("shared", "bye", True), ("shared", "hello", True)]
    for c in (bob, sam, root):  # another's personal one: as if it did not exist
        for r in (await c.patch(f"{URL}/{alices}", json={"text": "x"}),
                  await c.delete(f"{URL}/{alices}")):
            assert r.status_code == 404, r.text
            assert "Alice" not in r.text

    r = await alice.patch(f"{URL}/{alices}", json={"shortcut": "MINE2", "text": "changed"})
    assert r.status_code == 200, r.text
    assert (r.json()["shortcut"], r.json()["text"]) == ("mine2", "changed")
    r = await root.patch(f"{URL}/{shared['id']}", json={"text": "Hi {end_user}"})
    assert r.status_code == 200 and r.json()["text"] == "Hi {end_user}"
    assert (await alice.delete(f"{URL}/{alices}")).json() == {"id": alices, "deleted": True}
    assert (await sam.delete(f"{URL}/{shared['id']}")).status_code == 200
    assert await shortcuts(alice) == [("shared", "bye", False), ("personal", "other", True)]
    assert (await alice.delete(f"{URL}/{alices}")).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"shortcut": "", "text": "x"}, "shortcut"),
    ({"shortcut": "has space", "text": "x"}, "shortcut"),
    ({"shortcut": "caf\u00e9", "text": "x"}, "shortcut"),
    ({"shortcut": "/slash", "text": "x"}, "shortcut"),
    ({"shortcut": "x" * 51, "text": "x"}, "shortcut"),
    ({"shortcut": "ok", "text": ""}, "text"),
    ({"shortcut": "ok", "text": "   "}, "text"),
    ({"shortcut": "ok", "text": "x" * 4001}, "text"),
    ({"shortcut": "ok", "text": "x", "scope": "team"}, "scope"),
    ({"shortcut": "ok"}, "text"),
    ({"shortcut": "ok", "text": "x", "owner_id": 1}, "owner_id"),
])
async def test_validation_names_the_field(app, team, body, field):  # noqa: F811
    alice = await team("alice")
    r = await alice.post(URL, json=body)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["fields"]], r.text
    assert await shortcuts(alice) == []


async def test_limits_are_accepted(app, team):  # noqa: F811
    alice = await team("alice")
    r = await create(alice, " Ab_9-" + "z" * 45 + " ", "t" * 4000)
    assert r.status_code == 201, r.text
    assert r.json()["shortcut"] == "ab_9-" + "z" * 45  # trimmed, lowercased: 50
    assert len(r.json()["text"]) == 4000


async def test_shortcuts_are_unique_per_scope_and_owner(app, team):  # noqa: F811
    alice, bob, sam = await team("alice", "bob", "sam")
    assert (await create(sam, "hi", "shared hi", "shared")).status_code == 201
    r = await create(sam, "HI", "again", "shared")
    assert r.status_code == 409 and [f["field"] for f in r.json()["fields"]] == ["shortcut"]
    # A personal one may repeat a shared shortcut, and two people may use the same one.
    assert (await create(alice, "hi", "alice hi")).status_code == 201
    assert (await create(bob, "hi", "bob hi")).status_code == 201
    assert (await create(alice, "hi", "twice")).status_code == 409
    other = (await create(alice, "yo", "yo")).json()["id"]
    r = await alice.patch(f"{URL}/{other}", json={"shortcut": "hi"})
    assert r.status_code == 409
    assert (await alice.patch(f"{URL}/{other}", json={"shortcut": "yo"})).status_code == 200
    # Concurrent creations of one shortcut: one wins.
    answers = await asyncio.gather(*(create(bob, "race", f"n{i}") for i in range(5)))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409, 409]


async def test_patch_keeps_the_scope_and_refuses_unknown_fields(app, team):  # noqa: F811
    sam = await team("sam")
    made = (await create(sam, "a", "x", "shared")).json()
    r = await sam.patch(f"{URL}/{made['id']}", json={"scope": "personal"})
    assert r.status_code == 422 and [f["field"] for f in r.json()["fields"]] == ["scope"]
    r = await sam.patch(f"{URL}/{made['id']}", json={"text": ""})
    assert r.status_code == 422
