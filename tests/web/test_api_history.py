"""History and labels through the real app, on SQLite and PostgreSQL: labels set, merged,
refused, suggested and filtered; the resolved list and its filters, paged, as each role
may see it; the end user's earlier conversations beside a ticket, openable.

Tickets are opened the real way (Smartly webhooks); times of closing are then fixed
in the database so the date filters have known answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connector.storage.models import StreamEvent, Ticket
from tests.conftest import add_bot, on_each_dialect, signed_in_staff
from tests.helpers import execute, rows
from tests.web.test_api_tickets import claim, escalate, fields

pytestmark = pytest.mark.anyio

_t = Ticket.__table__


settings = on_each_dialect()
staff = signed_in_staff(("alice", "agent"), ("bob", "agent"), ("sam", "supervisor"))


async def handled(client: httpx.AsyncClient, bot: Any, agent: httpx.AsyncClient,
                  end_user: str, said: str = "hello") -> int:
    """A ticket of `end_user` claimed, answered and resolved by `agent`: its id."""
    ticket = await escalate(client, bot, end_user, before=(said,))
    assert (await claim(agent, ticket)).status_code == 200
    r = await agent.post(f"/api/tickets/{ticket}/messages", json={"text": f"re {said}"})
    assert r.status_code == 201, r.text
    assert (await agent.post(f"/api/tickets/{ticket}/resolve", json={})).status_code == 200
    return ticket


async def resolved_on(app: Any, ticket: int, day: dt.date) -> None:
    at = dt.datetime.combine(day, dt.time(12), dt.UTC)
    await execute(app, sa.update(_t).where(_t.c.id == ticket).values(resolved_at=at))


async def listed(c: httpx.AsyncClient, **params: Any) -> list[int]:
    r = await c.get("/api/tickets", params={"per_page": 200, **params})
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["tickets"]]


async def labels_of(c: httpx.AsyncClient, ticket: int) -> list[str]:
    r = await c.get(f"/api/tickets/{ticket}")
    assert r.status_code == 200, r.text
    return r.json()["labels"]


# --- labels -----------------------------------------------------------------------------------

async def test_labels_are_set_merged_listed_and_filtered(app, client, bot, staff):
    alice, sam = staff["alice"], staff["sam"]
    ticket = await escalate(client, bot, "u-1")
    other = await escalate(client, bot, "u-2")
    assert (await claim(alice, ticket)).status_code == 200
    r = await alice.patch(f"/api/tickets/{ticket}",
                          json={"labels": ["  Billing ", "billing", "VIP", "refund"]})
    assert r.status_code == 200, r.text
    assert r.json()["labels"] == ["billing", "refund", "vip"]
    assert await labels_of(alice, ticket) == ["billing", "refund", "vip"]
    assert await labels_of(sam, ticket) == ["billing", "refund", "vip"]
    page = (await sam.get("/api/tickets")).json()["tickets"]
    assert {t["id"]: t["labels"] for t in page} == {ticket: ["billing", "refund", "vip"],
                                                     other: []}
    # A staff member may label any ticket, a queued one too.
    assert (await sam.patch(f"/api/tickets/{other}",
                            json={"labels": ["billing"]})).status_code == 200
    assert await listed(sam, label="Billing") == [other, ticket]
    assert await listed(sam, label="vip") == [ticket]
    assert await listed(sam, label="nothing") == []
    # The set is replaced, not added to; an empty list clears it.
    r = await alice.patch(f"/api/tickets/{ticket}", json={"labels": ["refund"]})
    assert r.json()["labels"] == ["refund"]
    assert await listed(sam, label="vip") == []
    assert (await alice.patch(f"/api/tickets/{ticket}", json={"labels": []})).json()[
        "labels"] == []


async def test_a_label_change_is_a_ticket_updated_frame_carrying_the_labels(
        app, client, bot, staff):
    alice = staff["alice"]
    ticket = await escalate(client, bot, "u-1")
    assert (await claim(alice, ticket)).status_code == 200
    before = len(await rows(app, StreamEvent))
    assert (await alice.patch(f"/api/tickets/{ticket}",
                              json={"labels": ["b", "a"]})).status_code == 200
    frames = (await rows(app, StreamEvent, order=StreamEvent.id))[before:]
    assert [(f["type"], f["payload"]["ticket"]["labels"]) for f in frames] == [
        ("ticket.updated", ["a", "b"])]
    # The same set again changes nothing and says nothing.
    assert (await alice.patch(f"/api/tickets/{ticket}",
                              json={"labels": ["A", "b"]})).status_code == 200
    assert len(await rows(app, StreamEvent)) == before + 1
    # Later frames about the ticket (a transfer) still carry them.
    r = await alice.post(f"/api/tickets/{ticket}/transfer", json={"to": None})
    assert r.status_code == 200 and r.json()["labels"] == ["a", "b"]
    last = (await rows(app, StreamEvent, order=StreamEvent.id))[-2:]
    assert [f["payload"]["ticket"]["labels"] for f in last
            if f["type"] == "ticket.updated"] == [["a", "b"]]


BAD_LABELS = [
    ({"labels": [""]}, "labels.0"),
    ({"labels": ["ok", "   "]}, "labels.1"),
    ({"labels": ["x" * 51]}, "labels.0"),
    ({"labels": ["a\nb"]}, "labels.0"),
    ({"labels": [f"l{n}" for n in range(21)]}, "labels"),
    ({"labels": ["a"] * 21}, "labels"),
    ({"labels": [1]}, "labels.0"),
    ({"labels": "billing"}, "labels"),
    ({}, "labels"),
    ({"labels": ["a"], "color": "red"}, "color"),
]


@pytest.mark.parametrize(("payload", "field"), BAD_LABELS)
async def test_a_bad_label_set_is_refused_naming_the_field(app, client, bot, staff, payload,
                                                           field):
    ticket = await escalate(client, bot, "u-1")
    r = await staff["sam"].patch(f"/api/tickets/{ticket}", json=payload)
    assert r.status_code == 422, r.text
    assert field in fields(r)
    assert await labels_of(staff["sam"], ticket) == []


async def test_twenty_labels_are_accepted(app, client, bot, staff):
    ticket = await escalate(client, bot, "u-1")
    many = [f"l{n:02}" for n in range(18)] + ["L00", " l01 "]
    r = await staff["sam"].patch(f"/api/tickets/{ticket}", json={"labels": many})
    assert r.status_code == 200 and len(r.json()["labels"]) == 18
    many = [f"l{n:02}" for n in range(20)]
    r = await staff["sam"].patch(f"/api/tickets/{ticket}", json={"labels": many})
    assert r.status_code == 200 and len(r.json()["labels"]) == 20


async def test_who_may_label(app, client, bot, staff):
    alice, bob = staff["alice"], staff["bob"]
    queued = await escalate(client, bot, "u-1")
    # An agent may see a queued ticket but not manage it.
    r = await alice.patch(f"/api/tickets/{queued}", json={"labels": ["x"]})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert (await claim(bob, queued)).status_code == 200
    # Another agent's ticket is answered as reading it is.
    r = await alice.patch(f"/api/tickets/{queued}", json={"labels": ["x"]})
    read = await alice.get(f"/api/tickets/{queued}")
    assert (r.status_code, r.json()) == (read.status_code, read.json())
    assert await labels_of(bob, queued) == []
    # The assignee may, even after resolving it.
    assert (await bob.post(f"/api/tickets/{queued}/resolve", json={})).status_code == 200
    assert (await bob.patch(f"/api/tickets/{queued}",
                            json={"labels": ["late"]})).json()["labels"] == ["late"]
    assert (await alice.patch("/api/tickets/999999", json={"labels": []})).status_code == 404


async def test_labels_are_suggested_most_used_first_from_tickets_one_may_see(
        app, client, bot, staff):
    alice, bob, sam = staff["alice"], staff["bob"], staff["sam"]
    t1, t2, t3 = [await escalate(client, bot, f"u-{n}") for n in range(3)]
    assert (await claim(alice, t1)).status_code == 200
    assert (await claim(bob, t2)).status_code == 200
    assert (await claim(bob, t3)).status_code == 200
    await alice.patch(f"/api/tickets/{t1}", json={"labels": ["refund", "billing"]})
    await bob.patch(f"/api/tickets/{t2}", json={"labels": ["billing", "secret-vip"]})
    await bob.patch(f"/api/tickets/{t3}", json={"labels": ["billing", "bug_50%"]})

    async def suggested(c: httpx.AsyncClient, prefix: str | None = None) -> list[Any]:
        r = await c.get("/api/labels", params={} if prefix is None else {"prefix": prefix})
        assert r.status_code == 200, r.text
        return [(s["label"], s["tickets"]) for s in r.json()["labels"]]

    assert await suggested(sam) == [("billing", 3), ("bug_50%", 1), ("refund", 1),
                                    ("secret-vip", 1)]
    assert await suggested(sam, " B") == [("billing", 3), ("bug_50%", 1)]
    assert await suggested(sam, "bug_5") == [("bug_50%", 1)]
    assert await suggested(sam, "bug%") == []  # LIKE's wildcards are plain characters
    assert await suggested(sam, "b_g") == []
    # An agent is told only of labels on tickets they may see.
    assert await suggested(alice) == [("billing", 1), ("refund", 1)]
    r = await sam.get("/api/labels", params={"prefix": "x" * 51})
    assert r.status_code == 422 and fields(r) == ["prefix"]


# --- the resolved list ------------------------------------------------------------------------

async def test_the_resolved_list_filters_each_way_and_pages(app, client, bot, channel, staff):
    alice, bob, sam = staff["alice"], staff["bob"], staff["sam"]
    other_bot = await add_bot(app, channel.url, name="other")
    a1 = await handled(client, bot, alice, "u-1")
    a2 = await handled(client, other_bot, alice, "u-2")
    b1 = await handled(client, bot, bob, "u-1")
    b2 = await handled(client, bot, bob, "u-3")
    still_open = await escalate(client, bot, "u-4")
    await resolved_on(app, a1, dt.date(2025, 3, 1))
    await resolved_on(app, a2, dt.date(2025, 3, 2))
    await resolved_on(app, b1, dt.date(2025, 3, 3))
    await resolved_on(app, b2, dt.date(2025, 3, 4))
    await sam.patch(f"/api/tickets/{a2}", json={"labels": ["refund"]})
    await sam.patch(f"/api/tickets/{b2}", json={"labels": ["refund", "vip"]})

    # The latest closed first.
    assert await listed(sam, state="resolved") == [b2, b1, a2, a1]
    assert still_open not in await listed(sam, state="resolved")
    assert await listed(sam, state="resolved", agent="alice") == [a2, a1]
    assert await listed(sam, state="resolved", agent="nobody") == []
    assert await listed(sam, state="resolved", integration=other_bot.id) == [a2]
    assert await listed(sam, state="resolved", label="refund") == [b2, a2]
    assert await listed(sam, state="resolved", label="refund", agent="bob") == [b2]
    assert await listed(sam, state="resolved", end_user="u-1") == [b1, a1]
    assert await listed(sam, state="resolved", **{"from": "2025-03-02"}) == [b2, b1, a2]
    assert await listed(sam, state="resolved", **{"to": "2025-03-02"}) == [a2, a1]
    assert await listed(sam, state="resolved",
                        **{"from": "2025-03-02", "to": "2025-03-03"}) == [b1, a2]
    assert await listed(sam, state="resolved",
                        **{"from": "2025-03-04", "to": "2025-03-04"}) == [b2]
    # Pages of two, with the total.
    seen = []
    for page in (1, 2, 3):
        r = await sam.get("/api/tickets", params={"state": "resolved", "per_page": 2,
                                                  "page": page})
        assert r.json()["total"] == 4
        seen += [t["id"] for t in r.json()["tickets"]]
    assert seen == [b2, b1, a2, a1]
    # Filters apply to the other lists too (dates then of the handover).
    assert await listed(sam, state="queued", end_user="u-4") == [still_open]
    assert await listed(sam, end_user="u-4") == [still_open]


async def test_an_agent_sees_only_their_own_resolved_tickets(app, client, bot, staff):
    alice, bob = staff["alice"], staff["bob"]
    a1 = await handled(client, bot, alice, "u-1")
    b1 = await handled(client, bot, bob, "u-2")
    await staff["sam"].patch(f"/api/tickets/{b1}", json={"labels": ["refund"]})
    assert await listed(alice, state="resolved") == [a1]
    assert await listed(alice, state="resolved", agent="bob") == []
    assert await listed(alice, state="resolved", label="refund") == []
    assert await listed(alice, state="resolved", end_user="u-2") == []
    assert await listed(bob, state="resolved") == [b1]
    assert (await alice.get(f"/api/tickets/{b1}")).status_code == 403


BAD_FILTERS = [
    ({"from": "2025-3-1"}, "from"),
    ({"from": "2025-02-30"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"to": ""}, "to"),
    ({"from": "2025-03-02", "to": "2025-03-01"}, "to"),
    ({"label": "   "}, "label"),
    ({"label": ""}, "label"),
    ({"label": "x" * 51}, "label"),
    ({"agent": "a" * 201}, "agent"),
    ({"end_user": "u" * 201}, "end_user"),
    ({"integration": "i" * 201}, "integration"),
    ({"state": "closed"}, "state"),
]


@pytest.mark.parametrize(("params", "field"), BAD_FILTERS)
async def test_a_bad_filter_is_refused_naming_the_parameter(app, staff, params, field):
    r = await staff["sam"].get("/api/tickets", params={"state": "resolved", **params})
    assert r.status_code == 422, r.text
    assert fields(r) == [field]


# --- earlier conversations --------------------------------------------------------------------

async def test_earlier_conversations_are_listed_and_openable_as_the_role_allows(
        app, client, bot, channel, staff):
    alice, bob, sam = staff["alice"], staff["bob"], staff["sam"]
    first = await handled(client, bot, alice, "u-1", said="my order is late")
    second = await handled(client, bot, bob, "u-1", said="wrong size")
    third = await handled(client, bot, alice, "u-1", said="refund please")
    elsewhere = await handled(client, bot, alice, "u-2")
    other_bot = await add_bot(app, channel.url, name="other")
    await handled(client, other_bot, alice, "u-1")  # same end user, another integration
    now = await escalate(client, bot, "u-1", before=("again",))
    assert (await claim(alice, now)).status_code == 200

    async def history(c: httpx.AsyncClient, ticket: int) -> list[int]:
        r = await c.get(f"/api/tickets/{ticket}/history")
        assert r.status_code == 200, r.text
        assert r.json()["ticket_id"] == ticket
        return [t["id"] for t in r.json()["tickets"]]

    # Staff see every earlier ticket of the conversation, newest first; never later ones.
    assert await history(sam, now) == [third, second, first]
    assert await history(sam, second) == [first]
    assert await history(sam, elsewhere) == []
    # Alice, assigned the open one, sees her own earlier ones, not Bob's.
    assert await history(alice, now) == [third, first]
    r = await alice.get(f"/api/tickets/{first}")
    assert r.status_code == 200
    said = [(m["kind"], m["text"]) for m in r.json()["messages"]]
    assert ("user", "my order is late") in said  # the bot's turns are there
    assert ("agent", "re my order is late") in said
    assert ("user", "wrong size") in said  # the bot's history, before Bob's handover
    assert ("agent", "re wrong size") not in said  # Bob's ticket is not hers
    assert (await alice.get(f"/api/tickets/{second}")).status_code == 403
    # Bob may not ask beside a ticket he may not see.
    r = await bob.get(f"/api/tickets/{now}/history")
    read = await bob.get(f"/api/tickets/{now}")
    assert (r.status_code, r.json()) == (read.status_code, read.json()) == (
        403, read.json())
    assert await history(bob, second) == []
    assert (await sam.get("/api/tickets/999999/history")).status_code == 404
