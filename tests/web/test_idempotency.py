"""`Idempotency-Key` on replies and notes, through the real app and the fake channel,
on SQLite and PostgreSQL: one message and one delivery per key, concurrent duplicates
act once, a key reused for another request is refused, old keys are pruned."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connector.domain import idempotency
from connector.storage.db import utcnow
from connector.storage.models import Delivery, IdempotentRequest, Message
from tests.conftest import add_user, on_each_dialect, sign_in
from tests.helpers import execute, rows, wait_settled
from tests.web.test_api_tickets import claim, escalate

pytestmark = pytest.mark.anyio

_r = IdempotentRequest.__table__


settings = on_each_dialect()


@pytest.fixture
async def agents(app: Any) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        out = []
        for name in ("alice", "bob"):
            await add_user(app, name, "agent")
            out.append(await sign_in(stack, app, name))
        yield out[0], out[1]


async def open_ticket(client: httpx.AsyncClient, bot: Any, agent: httpx.AsyncClient,
                      end_user: str = "u-1") -> int:
    ticket = await escalate(client, bot, end_user)
    assert (await claim(agent, ticket)).status_code == 200
    return ticket


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def agent_messages(app: Any, ticket: int) -> list[str]:
    return [m["text"] for m in await rows(app, Message, Message.ticket_id == ticket,
                                          Message.kind.in_(["agent", "note"]))]


async def test_the_same_key_twice_sends_one_message(app, client, bot, channel, agents):
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    url = f"/api/tickets/{ticket}/messages"
    first = await alice.post(url, json={"text": "Hello once"}, headers=keyed("k-1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await alice.post(url, json={"text": "Hello once"}, headers=keyed("k-1"))
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    await wait_settled(app, 1)
    await asyncio.sleep(0.3)  # nothing else on its way
    assert await agent_messages(app, ticket) == ["Hello once"]
    assert len(await rows(app, Delivery)) == 1
    assert [r.body["message"]["text"] for r in channel.delivered] == ["Hello once"]
    # Another key: another message.
    third = await alice.post(url, json={"text": "Hello once"}, headers=keyed("k-2"))
    assert third.status_code == 201 and third.json()["id"] != first.json()["id"]
    assert await agent_messages(app, ticket) == ["Hello once", "Hello once"]


async def test_notes_honour_the_key_too(app, client, bot, agents):
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    url = f"/api/tickets/{ticket}/notes"
    answers = [await alice.post(url, json={"text": "a note"}, headers=keyed("n-1"))
               for _ in range(3)]
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    assert await agent_messages(app, ticket) == ["a note"]


async def test_concurrent_duplicates_act_once(app, client, bot, channel, agents):
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    url = f"/api/tickets/{ticket}/messages"
    answers = await asyncio.gather(*(
        alice.post(url, json={"text": "only one"}, headers=keyed("same")) for _ in range(8)))
    assert [r.status_code for r in answers] == [201] * 8, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 7
    await wait_settled(app, 1)
    await asyncio.sleep(0.3)
    assert await agent_messages(app, ticket) == ["only one"]
    assert len(channel.delivered) == 1


async def test_a_key_reused_for_another_request_is_refused(app, client, bot, agents):
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    other = await open_ticket(client, bot, alice, "u-2")
    url = f"/api/tickets/{ticket}/messages"
    assert (await alice.post(url, json={"text": "one"}, headers=keyed("k"))).status_code == 201
    refused = [
        await alice.post(url, json={"text": "two"}, headers=keyed("k")),  # another body
        await alice.post(f"/api/tickets/{other}/messages", json={"text": "one"},
                         headers=keyed("k")),  # another ticket
        await alice.post(f"/api/tickets/{ticket}/notes", json={"text": "one"},
                         headers=keyed("k")),  # another action
    ]
    for r in refused:
        assert r.status_code == 422, r.text
        assert r.json()["message"] == "Idempotency-Key reused for another request"
        assert [f["field"] for f in r.json()["fields"]] == ["Idempotency-Key"]
    assert await agent_messages(app, ticket) == ["one"]
    assert await agent_messages(app, other) == []


@pytest.mark.parametrize("key", ["", "x" * 201, "caf\u00e9", "tab\there", "del\x7f"])
async def test_a_malformed_key_is_refused_naming_the_header(app, client, bot, agents, key):
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    r = await alice.post(f"/api/tickets/{ticket}/messages", json={"text": "x"},
                         headers={"Idempotency-Key": key.encode()})
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["fields"]] == ["Idempotency-Key"]
    assert await agent_messages(app, ticket) == []


async def test_keys_are_per_user_and_refusals_are_not_remembered(app, client, bot, agents):
    alice, bob = agents
    ticket = await open_ticket(client, bot, alice)
    url = f"/api/tickets/{ticket}/messages"
    # Bob may not reply (not his ticket): refused, and his key stays free.
    r = await bob.post(url, json={"text": "hi"}, headers=keyed("k"))
    assert r.status_code in (403, 409), r.text
    assert (await alice.post(url, json={"text": "hi"}, headers=keyed("k"))).status_code == 201
    # A refusal is judged again on retry: alice's ticket transferred to bob, he may now.
    assert (await alice.post(f"/api/tickets/{ticket}/transfer",
                             json={"to": "bob"})).status_code == 200
    r = await bob.post(url, json={"text": "hi"}, headers=keyed("k"))
    assert r.status_code == 201, r.text
    assert await agent_messages(app, ticket) == ["hi", "hi"]


async def test_old_keys_are_replayed_no_more_and_pruned(app, client, bot, agents):
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    url = f"/api/tickets/{ticket}/messages"
    assert (await alice.post(url, json={"text": "a"}, headers=keyed("old"))).status_code == 201
    assert (await alice.post(url, json={"text": "b"}, headers=keyed("new"))).status_code == 201
    day_ago = utcnow() - idempotency.WINDOW - dt.timedelta(seconds=1)
    await execute(app, sa.update(_r).where(_r.c.key == "old").values(created_at=day_ago))
    # Past its window the key is free again: it acts (and may carry another body).
    r = await alice.post(url, json={"text": "c"}, headers=keyed("old"))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    await execute(app, sa.update(_r).where(_r.c.key == "old").values(created_at=day_ago))
    async with app.state.store.begin() as conn:
        assert await idempotency.prune(conn) == 1
    assert [r["key"] for r in await rows(app, IdempotentRequest)] == ["new"]
    assert await agent_messages(app, ticket) == ["a", "b", "c"]
