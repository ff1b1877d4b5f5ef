"""The ticket state machine through `connector.domain.tickets`, on the real database."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from connector.accounts import users
from connector.domain import errors, tickets
from connector.storage.models import (
    Conversation,
    Counter,
    Delivery,
    Message,
    StreamEvent,
    TicketTransition,
)
from tests import builders
from tests.conftest import add_user
from tests.helpers import actor, execute, rows, wait_settled

pytestmark = pytest.mark.anyio


async def open_ticket(client: Any, bot: Any, end_user: str = "u-1") -> int:
    r = await client.post(bot.smartly_path, json=builders.turn(end_user, "help", need_help=True))
    assert r.status_code == 200 and r.json()["ticket_opened"], r.text
    return r.json()["ticket_id"]


async def do(app: Any, op: Any, *args: Any, **kw: Any) -> Any:
    async with app.state.store.transaction() as tx:
        return await op(tx, *args, **kw)


async def ticket(app: Any, ticket_id: int) -> dict[str, Any]:
    async with app.state.store.read() as conn:
        found = await tickets.load(conn, ticket_id)
    assert found is not None
    return found


async def transitions(app: Any, ticket_id: int) -> list[tuple[Any, ...]]:
    found = await rows(app, TicketTransition, TicketTransition.ticket_id == ticket_id)
    return [(t["action"], t["from_state"], t["to_state"], t["actor_id"], t["assignee_id"])
            for t in found]


@pytest.fixture
async def staff(app: Any) -> dict[str, tickets.Actor]:
    people = {"alice": "agent", "bob": "agent", "carol": "agent", "sam": "supervisor"}
    return {name: actor(await add_user(app, name, role)) for name, role in people.items()}


# --- claim ------------------------------------------------------------------------------------

async def test_claim_race_exactly_one_agent_wins(app, client, bot, staff):
    agents = [staff["alice"], staff["bob"], staff["carol"]]
    ids = [await open_ticket(client, bot, f"u-{i}") for i in range(4)]
    for ticket_id in ids:
        results = await asyncio.gather(*[do(app, tickets.claim, ticket_id, a) for a in agents],
                                       return_exceptions=True)
        won = [(a, r) for a, r in zip(agents, results, strict=True) if isinstance(r, dict)]
        lost = [r for r in results if not isinstance(r, dict)]
        assert len(won) == 1, results
        winner, claimed = won[0]
        assert len(lost) == len(agents) - 1
        for exc in lost:
            # The losers are agents: the ticket is no longer theirs to see, nor who has it.
            assert isinstance(exc, errors.Forbidden), exc
            assert str(exc) == "not allowed to see this ticket" and exc.detail == {}
        stored = await ticket(app, ticket_id)
        assert (stored["state"], stored["assignee_id"]) == ("assigned", winner.id)
        assert claimed["assignee_id"] == winner.id
        assert [t for t in await transitions(app, ticket_id) if t[0] == "claimed"] == [
            ("claimed", "queued", "assigned", winner.id, winner.id)]
        # The losers' transactions left no trace: one "joined" line.
        joined = await rows(app, Message, Message.ticket_id == ticket_id,
                            Message.kind == "system")
        assert sum("joined" in m["text"] for m in joined) == 1


async def test_claim_again_by_the_assignee_is_a_no_op(app, client, bot, staff):
    ticket_id = await open_ticket(client, bot)
    first = await do(app, tickets.claim, ticket_id, staff["alice"])
    again = await do(app, tickets.claim, ticket_id, staff["alice"])
    assert again["claimed_at"] == first["claimed_at"]
    assert [t[0] for t in await transitions(app, ticket_id)] == ["opened", "claimed"]


async def test_claim_of_a_closed_or_missing_ticket(app, client, bot, staff):
    ticket_id = await open_ticket(client, bot)
    await do(app, tickets.resolve, ticket_id, staff["sam"])
    with pytest.raises(errors.Conflict, match="abandoned"):
        await do(app, tickets.claim, ticket_id, staff["sam"])
    with pytest.raises(errors.Forbidden):  # closed and never theirs: agents do not see it
        await do(app, tickets.claim, ticket_id, staff["alice"])
    with pytest.raises(errors.NotFound):
        await do(app, tickets.claim, ticket_id + 1000, staff["alice"])


async def test_supervisor_losing_a_claim_is_told_who_took_it(app, client, bot, staff):
    ticket_id = await open_ticket(client, bot)
    await do(app, tickets.claim, ticket_id, staff["alice"])
    with pytest.raises(errors.Conflict, match="taken") as lost:
        await do(app, tickets.claim, ticket_id, staff["sam"])
    assert lost.value.detail["assignee"] == "alice"


# --- transfer ---------------------------------------------------------------------------------

async def test_transfer_to_a_colleague_then_back_to_the_queue(app, client, bot, staff):
    alice, bob, carol = staff["alice"], staff["bob"], staff["carol"]
    ticket_id = await open_ticket(client, bot)
    claimed = await do(app, tickets.claim, ticket_id, alice)

    async with app.state.store.read() as conn:
        bob_user = await users.by_id(conn, bob.id)
    # Someone who is not the assignee cannot move it.
    with pytest.raises(errors.Forbidden):
        await do(app, tickets.transfer, ticket_id, carol, bob_user)

    moved = await do(app, tickets.transfer, ticket_id, alice, bob_user)
    assert (moved["state"], moved["assignee_id"], moved["assignee"]) == ("assigned", bob.id,
                                                                        "bob")
    assert moved["claimed_at"] == claimed["claimed_at"]  # wait time is not reset
    # Alice handed it over: she may no longer reply, Bob may.
    with pytest.raises(errors.Forbidden):
        await do(app, tickets.reply, ticket_id, alice, "still me?")
    await do(app, tickets.reply, ticket_id, bob, "Bob here")

    back = await do(app, tickets.transfer, ticket_id, bob, None)
    assert (back["state"], back["assignee_id"]) == ("queued", None)
    reclaimed = await do(app, tickets.claim, ticket_id, carol)
    assert reclaimed["assignee_id"] == carol.id

    assert await transitions(app, ticket_id) == [
        ("opened", None, "queued", None, None),
        ("claimed", "queued", "assigned", alice.id, alice.id),
        ("transferred", "assigned", "assigned", alice.id, bob.id),
        ("requeued", "assigned", "queued", bob.id, None),
        ("claimed", "queued", "assigned", carol.id, carol.id),
    ]


async def test_supervisor_assigns_a_queued_ticket(app, client, bot, staff):
    ticket_id = await open_ticket(client, bot)
    async with app.state.store.read() as conn:
        alice_user = await users.by_id(conn, staff["alice"].id)
    assigned = await do(app, tickets.transfer, ticket_id, staff["sam"], alice_user)
    assert (assigned["state"], assigned["assignee_id"]) == ("assigned", staff["alice"].id)
    assert assigned["claimed_at"] is not None
    assert (await transitions(app, ticket_id))[-1] == (
        "assigned", "queued", "assigned", staff["sam"].id, staff["alice"].id)


# --- reply and note ---------------------------------------------------------------------------

async def test_only_the_assignee_can_reply(app, client, bot, channel, staff):
    ticket_id = await open_ticket(client, bot)
    with pytest.raises(errors.Conflict):  # nobody has it yet
        await do(app, tickets.reply, ticket_id, staff["sam"], "hello?")
    await do(app, tickets.claim, ticket_id, staff["alice"])
    with pytest.raises(errors.Forbidden):
        await do(app, tickets.reply, ticket_id, staff["bob"], "not mine")
    with pytest.raises(errors.Conflict):  # a supervisor sees it but does not own it
        await do(app, tickets.reply, ticket_id, staff["sam"], "not mine either")
    with pytest.raises(errors.Invalid):
        await do(app, tickets.reply, ticket_id, staff["alice"], "   ")
    with pytest.raises(errors.Invalid):
        await do(app, tickets.reply, ticket_id, staff["alice"], "x" * (tickets.MAX_TEXT + 1))
    assert await rows(app, Delivery) == []

    message = await do(app, tickets.reply, ticket_id, staff["alice"], "Bonjour !")
    assert (message["kind"], message["author"], message["text"]) == ("agent", "alice",
                                                                     "Bonjour !")
    (delivery,) = await rows(app, Delivery)
    assert delivery["message_id"] == message["id"]
    assert delivery["recipient_id"] == "u-1"
    await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert channel.texts() == ["Bonjour !"]


async def test_note_is_never_delivered(app, client, bot, channel, staff):
    ticket_id = await open_ticket(client, bot)
    await do(app, tickets.claim, ticket_id, staff["alice"])
    note = await do(app, tickets.note, ticket_id, staff["alice"], "customer sounds upset")
    sup_note = await do(app, tickets.note, ticket_id, staff["sam"], "ok, be gentle")
    with pytest.raises(errors.Forbidden):
        await do(app, tickets.note, ticket_id, staff["bob"], "peeking")
    for n in (note, sup_note):
        assert n["kind"] == "note"
        assert await rows(app, Delivery, Delivery.message_id == n["id"]) == []
    stored = await rows(app, Message, Message.kind == "note")
    assert [m["text"] for m in stored] == ["customer sounds upset", "ok, be gentle"]
    assert all(m["ticket_id"] == ticket_id for m in stored)

    # A reply queued after the notes arrives alone: the notes went nowhere.
    await do(app, tickets.reply, ticket_id, staff["alice"], "How can I help?")
    await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert [r.body["message"] for r in channel.received] == [{"text": "How can I help?"}]
    assert len(await rows(app, Delivery)) == 1


# --- resolve ----------------------------------------------------------------------------------

async def test_resolve_with_closing_message(app, client, bot, channel, staff):
    ticket_id = await open_ticket(client, bot, "u-bye")
    await do(app, tickets.claim, ticket_id, staff["alice"])
    with pytest.raises(errors.Forbidden):
        await do(app, tickets.resolve, ticket_id, staff["bob"])
    await do(app, tickets.reply, ticket_id, staff["alice"], "Done, your refund is on its way")
    resolved = await do(app, tickets.resolve, ticket_id, staff["alice"], "Bonne journée !")
    assert resolved["state"] == "resolved"
    assert resolved["resolved_at"] is not None

    got = await anyio.to_thread.run_sync(channel.wait_delivered, 2)
    assert [g.body for g in got] == [
        {"recipient": {"id": "u-bye"}, "verifyToken": bot.verify_token,
         "message": {"text": t}} for t in ("Done, your refund is on its way", "Bonne journée !")]
    closing = await rows(app, Message, Message.kind == "agent", Message.text == "Bonne journée !")
    assert closing[0]["ticket_id"] == ticket_id

    (conv,) = await rows(app, Conversation)
    assert conv["open_ticket_id"] is None
    with pytest.raises(errors.Conflict):
        await do(app, tickets.resolve, ticket_id, staff["alice"])
    with pytest.raises(errors.Conflict):
        await do(app, tickets.reply, ticket_id, staff["alice"], "one more thing")
    assert (await transitions(app, ticket_id))[-1] == (
        "resolved", "assigned", "resolved", staff["alice"].id, staff["alice"].id)

    # The conversation can be handed over again: a new ticket.
    again = await open_ticket(client, bot, "u-bye")
    assert again != ticket_id


async def test_resolve_of_a_queued_ticket_is_abandoned(app, client, bot, channel, staff):
    ticket_id = await open_ticket(client, bot)
    with pytest.raises(errors.Forbidden):  # an agent who never had it
        await do(app, tickets.resolve, ticket_id, staff["alice"])
    closed = await do(app, tickets.resolve, ticket_id, staff["sam"], "   ")  # blank: no message
    assert (closed["state"], closed["claimed_at"]) == ("abandoned", None)
    assert closed["resolved_at"] is not None
    assert await rows(app, Delivery) == []
    assert (await transitions(app, ticket_id))[-1] == (
        "abandoned", "queued", "abandoned", staff["sam"].id, None)
    m = tickets.metrics(closed)
    assert m["wait_seconds"] == (closed["resolved_at"] - closed["opened_at"]).total_seconds()
    assert m["first_response_seconds"] is None and m["handling_seconds"] is None


# --- history and metrics ----------------------------------------------------------------------

async def test_every_transition_is_recorded_with_actor_and_time(app, client, bot, staff):
    alice, sam = staff["alice"], staff["sam"]
    ticket_id = await open_ticket(client, bot)
    await do(app, tickets.claim, ticket_id, alice)
    await do(app, tickets.transfer, ticket_id, alice, None)
    await do(app, tickets.claim, ticket_id, alice)
    await do(app, tickets.resolve, ticket_id, sam)
    found = await rows(app, TicketTransition, TicketTransition.ticket_id == ticket_id)
    assert [(t["action"], t["actor_id"]) for t in found] == [
        ("opened", None), ("claimed", alice.id), ("requeued", alice.id), ("claimed", alice.id),
        ("resolved", sam.id)]
    stored = await ticket(app, ticket_id)
    times = [t["at"] for t in found]
    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)
    assert stored["opened_at"] <= times[0] and times[-1] >= stored["resolved_at"] - dt.timedelta(
        seconds=1)
    for t in found[1:]:
        assert stored["opened_at"] <= t["at"]


async def test_metrics_count_from_the_handover_not_the_bot_conversation(app, client, bot,
                                                                          staff):
    # A long bot conversation first...
    for i in range(3):
        await client.post(bot.smartly_path, json=builders.turn("u-m", f"chat {i}"))
    (conv,) = await rows(app, Conversation)
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    await execute(app, sa.update(Message.__table__).values(created_at=hour_ago))
    await execute(app, sa.update(Conversation.__table__).values(created_at=hour_ago))
    # ...then the handover.
    ticket_id = await open_ticket(client, bot, "u-m")
    queued = await ticket(app, ticket_id)
    assert tickets.metrics(queued)["first_response_seconds"] is None
    assert tickets.metrics(queued)["handling_seconds"] is None

    await do(app, tickets.claim, ticket_id, staff["alice"])
    await do(app, tickets.reply, ticket_id, staff["alice"], "first")
    first_reply = (await ticket(app, ticket_id))["first_response_at"]
    await do(app, tickets.reply, ticket_id, staff["alice"], "second")
    done = await do(app, tickets.resolve, ticket_id, staff["alice"])
    assert done["first_response_at"] == first_reply  # the first reply only

    m = tickets.metrics(done)
    opened, claimed = done["opened_at"], done["claimed_at"]
    assert m["wait_seconds"] == (claimed - opened).total_seconds()
    assert m["first_response_seconds"] == (first_reply - opened).total_seconds()
    assert m["handling_seconds"] == (done["resolved_at"] - claimed).total_seconds()
    first_bot_message = min(x["created_at"] for x in await rows(
        app, Message, Message.conversation_id == conv["id"]))
    assert (claimed - first_bot_message).total_seconds() >= 3600
    assert 0 <= m["wait_seconds"] < 3600
    assert 0 <= m["first_response_seconds"] < 3600
    summary = tickets.summary(done)
    assert {k: summary[k] for k in m} == m


# --- stream -----------------------------------------------------------------------------------

async def test_operations_emit_stream_events_with_increasing_cursors(app, client, bot, channel,
                                                                     staff):
    ticket_id = await open_ticket(client, bot)
    after_open = await rows(app, StreamEvent)
    assert [e["type"] for e in after_open] == ["ticket.created", "message.created"]
    assert after_open[0]["public"] is True

    await do(app, tickets.claim, ticket_id, staff["alice"])
    with pytest.raises(errors.Conflict):  # rolled back: emits nothing
        await do(app, tickets.claim, ticket_id, staff["sam"])
    await do(app, tickets.note, ticket_id, staff["alice"], "internal")
    await do(app, tickets.reply, ticket_id, staff["alice"], "hello")
    await wait_settled(app, 1)
    await do(app, tickets.resolve, ticket_id, staff["alice"])

    events = await rows(app, StreamEvent)
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1))  # increasing, gap-free from the first
    (counter,) = await rows(app, Counter, Counter.name == "stream", order=Counter.name)
    assert counter["value"] == ids[-1]
    times = [e["created_at"] for e in events]
    assert times == sorted(times)
    types = [e["type"] for e in events]
    for expected in ("ticket.created", "ticket.updated", "message.created", "delivery.updated"):
        assert expected in types
    assert all(e["ticket_id"] == ticket_id for e in events)
    # Each message event carries the stored message, in transcript order.
    msg_ids = [e["payload"]["message"]["id"] for e in events if e["type"] == "message.created"]
    stored = await rows(app, Message, Message.ticket_id == ticket_id)
    assert sorted(msg_ids) == [m["id"] for m in stored]
    final = [e for e in events if e["type"] == "ticket.updated"][-1]
    assert final["payload"]["ticket"]["state"] == "resolved"
    delivered = [e for e in events if e["type"] == "delivery.updated"][-1]
    assert delivered["payload"]["delivery"]["state"] == "delivered"
    # An agent's note is visible to that agent, not to the public queue.
    note_event = next(e for e in events if e["type"] == "message.created"
                      and e["payload"]["message"]["kind"] == "note")
    assert note_event["public"] is False and staff["alice"].id in note_event["user_ids"]
