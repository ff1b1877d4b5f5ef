"""Smartly webhook in: POST /hooks/smartly/{id}?key=... through the real app and SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from connector.accounts import integrations
from connector.storage.models import (
    Conversation,
    DedupeKey,
    InboundEvent,
    Integration,
    Message,
    Ticket,
    TicketTransition,
)
from tests import builders
from tests.conftest import add_bot, fresh_database, make_settings
from tests.helpers import counts, execute, rows, running

pytestmark = pytest.mark.anyio


async def post(client: Any, bot: Any, body: Any, **kw: Any) -> Any:
    return await client.post(bot.smartly_path, json=body, **kw)


async def conversation(app: Any, bot: Any, end_user: str) -> dict[str, Any]:
    (conv,) = await rows(app, Conversation, Conversation.integration_id == bot.id,
                         Conversation.end_user_id == end_user)
    return conv


async def sleep_until(when: dt.datetime) -> None:
    await anyio.sleep((when - dt.datetime.now(dt.UTC)).total_seconds() + 0.02)
    assert dt.datetime.now(dt.UTC) > when


async def transcript(app: Any, bot: Any, end_user: str) -> list[dict[str, Any]]:
    conv = await conversation(app, bot, end_user)
    return await rows(app, Message, Message.conversation_id == conv["id"], order=Message.seq)


# --- message_received -------------------------------------------------------------------------

async def test_turn_stores_input_and_answer_with_context(app, client, bot):
    body = builders.turn("u-1", "Où est ma commande ?", answer="Je regarde.",
                         handover_category_name="orders")
    r = await post(client, bot, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "processed" and out["ticket_id"] is None
    assert out["ticket_opened"] is False

    user_msg, bot_msg = await transcript(app, bot, "u-1")
    payload = body["payload"]
    assert (user_msg["kind"], user_msg["text"]) == ("user", payload["input"])
    assert (bot_msg["kind"], bot_msg["text"]) == ("bot", payload["answer"])
    assert bot_msg["seq"] == user_msg["seq"] + 1
    for msg in (user_msg, bot_msg):
        assert msg["ticket_id"] is None
        assert msg["event_id"] == out["event_id"]
        for name in ("intent", "confidence", "state_name", "platform", "lang",
                     "client_session_id", "handover_category_name"):
            assert msg["context"][name] == payload[name], name

    (event,) = await rows(app, InboundEvent)
    assert event["id"] == out["event_id"]
    assert (event["source"], event["event"], event["status"]) == (
        "smartly", "message_received", "processed")
    assert json.loads(event["raw"]) == body  # the whole raw payload, every field kept
    assert await rows(app, Ticket) == []


async def test_empty_answer_stores_only_the_user_input(app, client, bot):
    r = await post(client, bot, builders.turn("u-1", "allo ?", answer=""))
    assert r.status_code == 200, r.text
    msgs = await transcript(app, bot, "u-1")
    assert [(m["kind"], m["text"]) for m in msgs] == [("user", "allo ?")]


async def test_need_help_opens_one_ticket_and_later_input_joins_it(app, client, bot):
    r = await post(client, bot, builders.turn("u-7", "je veux un humain", need_help=True,
                                              handover_category_name="billing", lang="en-gb",
                                              platform="whatsapp", skill_id="skill-9"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["ticket_opened"] is True
    ticket_id = first["ticket_id"]

    (ticket,) = await rows(app, Ticket)
    assert ticket["id"] == ticket_id
    assert (ticket["state"], ticket["reason"]) == ("queued", "need_help")
    assert (ticket["lang"], ticket["platform"], ticket["skill_id"], ticket["category"]) == (
        "en-gb", "whatsapp", "skill-9", "billing")
    assert ticket["integration_id"] == bot.id
    conv = await conversation(app, bot, "u-7")
    assert conv["open_ticket_id"] == ticket_id
    assert ticket["conversation_id"] == conv["id"]

    # Asked again while the ticket is open: no second ticket.
    r = await post(client, bot, builders.turn("u-7", "toujours là ?", need_help=True))
    assert r.status_code == 200, r.text
    assert r.json()["ticket_opened"] is False
    assert r.json()["ticket_id"] == ticket_id
    assert len(await rows(app, Ticket)) == 1

    # A plain user input while the ticket is open is part of its live transcript.
    r = await post(client, bot, builders.turn("u-7", "mon numéro est 42", answer=None,
                                              muted=True))
    assert r.status_code == 200, r.text
    assert r.json()["ticket_id"] == ticket_id
    msgs = await transcript(app, bot, "u-7")
    last = msgs[-1]
    assert (last["kind"], last["text"], last["ticket_id"]) == ("user", "mon numéro est 42",
                                                               ticket_id)
    # The turn that asked for help came before the handover; everything after is the ticket's.
    assert msgs[0]["kind"] == "user" and msgs[0]["ticket_id"] is None
    assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1))
    (opened,) = await rows(app, TicketTransition)
    assert (opened["action"], opened["to_state"], opened["actor_id"]) == ("opened", "queued",
                                                                          None)


@pytest.mark.parametrize("spelling", ["plateform", "platform"])
async def test_escalation_requested_accepts_both_platform_spellings(app, client, bot, spelling):
    payload = {"skill_id": "skill-2", "lang": "nl-be", spelling: "messenger",
               "client_id": "c-31", "handover_category_name": "returns"}
    r = await post(client, bot, {"event": "escalation_requested", "payload": payload})
    assert r.status_code == 200, r.text
    assert r.json()["ticket_opened"] is True
    (ticket,) = await rows(app, Ticket)
    assert ticket["id"] == r.json()["ticket_id"]
    assert (ticket["reason"], ticket["lang"], ticket["platform"], ticket["skill_id"],
            ticket["category"]) == ("escalation_requested", "nl-be", "messenger", "skill-2",
                                    "returns")
    conv = await conversation(app, bot, "c-31")
    assert (conv["lang"], conv["platform"]) == ("nl-be", "messenger")

    # A second escalation while it is open: same ticket.
    r = await post(client, bot, builders.escalation("c-31", lang="nl-be"))
    assert r.json() == {**r.json(), "ticket_opened": False, "ticket_id": ticket["id"]}
    assert len(await rows(app, Ticket)) == 1


async def test_numeric_skill_id_is_kept_as_text(app, client, bot):
    r = await post(client, bot, builders.escalation("c-1", skill_id=1234))
    assert r.status_code == 200, r.text
    (ticket,) = await rows(app, Ticket)
    assert ticket["skill_id"] == "1234"


async def test_conversation_is_user_id_else_client_id(app, client, bot):
    r = await post(client, bot, builders.turn("same-user", "one"))
    assert r.status_code == 200
    # Only client_id: the same end user as the turn above (whose user_id == client_id).
    r = await post(client, bot, builders.escalation("same-user"))
    assert r.status_code == 200
    # user_id wins over a different client_id.
    r = await post(client, bot, builders.turn("u-pref", "two", client_id="c-other"))
    assert r.status_code == 200
    # An empty user_id falls back to client_id.
    r = await post(client, bot, builders.turn("", "three", client_id="c-fallback"))
    assert r.status_code == 200

    convs = {c["end_user_id"]: c for c in await rows(app, Conversation)}
    assert set(convs) == {"same-user", "u-pref", "c-fallback"}
    (ticket,) = await rows(app, Ticket)
    assert ticket["conversation_id"] == convs["same-user"]["id"]
    assert [m["text"] for m in await transcript(app, bot, "c-fallback")] == ["three", "Hi!"]


async def test_conversations_are_per_integration(app, client, bot, channel):
    other = await add_bot(app, channel.url, name="other")
    for b in (bot, other):
        r = await post(client, b, builders.turn("u-1", f"hi {b.id}", need_help=True))
        assert r.status_code == 200 and r.json()["ticket_opened"] is True
    convs = await rows(app, Conversation)
    assert sorted(c["integration_id"] for c in convs) == sorted([bot.id, other.id])
    assert len(await rows(app, Ticket)) == 2


# --- authentication ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["wrong", "missing", "empty", "unknown-integration",
                                  "other-integrations-key"])
async def test_bad_key_is_401_json_and_stores_nothing(app, client, bot, channel, case):
    other = await add_bot(app, channel.url, name="other")
    path = {
        "wrong": f"/hooks/smartly/{bot.id}?key=not-the-key",
        "missing": f"/hooks/smartly/{bot.id}",
        "empty": f"/hooks/smartly/{bot.id}?key=",
        "unknown-integration": f"/hooks/smartly/doesnotexist?key={bot.key}",
        "other-integrations-key": f"/hooks/smartly/{bot.id}?key={other.key}",
    }[case]
    before = await counts(app)
    r = await client.post(path, json=builders.turn("u-1", "hi", need_help=True))
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == "unauthorized"
    assert await counts(app) == before


async def test_key_is_read_from_any_query_form(app, client, bot):
    """`?key=...` alone, among other parameters, or percent-encoded: the same key."""
    base = f"/hooks/smartly/{bot.id}"
    encoded = "".join(f"%{b:02X}" for b in bot.key.encode())
    for query in (f"key={bot.key}", f"source=smartly&key={bot.key}", f"key={encoded}",
                  f"key={bot.key}&key=ignored"):
        r = await client.post(f"{base}?{query}", json=builders.turn("u-q", query))
        assert r.status_code == 200, (query, r.text)
    r = await client.post(f"{base}?key={bot.key}%00", json=builders.turn("u-q", "nul"))
    assert r.status_code == 401


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b'{"event": "message_received", "payload": {', b"not json",
                                 b"", b"\xff\xfe{}",
                                 # Python's parser takes these; JSON (and PostgreSQL) do not.
                                 b'{"event": "message_received", "payload": {"user_id": "u",'
                                 b' "confidence": NaN}}',
                                 b'{"event": "x", "payload": {"n": -Infinity}}'])
async def test_malformed_json_is_400_with_the_reason(app, client, bot, raw):
    before = await counts(app)
    r = await client.post(bot.smartly_path, content=raw,
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    out = r.json()
    assert out["error"] == "malformed_json"
    assert out["message"].startswith("malformed JSON: ")
    for constant in (b"NaN", b"Infinity"):
        if constant in raw:
            assert f"{constant.decode()} is not valid JSON" in out["message"]
    if raw.startswith(b"{"):
        # The parser's own reason and position, e.g. "Expecting property name ... column 41".
        try:
            json.loads(raw)
        except json.JSONDecodeError as exc:
            assert exc.msg in out["message"] and f"column {exc.colno}" in out["message"]
    assert await counts(app) == before


@pytest.mark.parametrize(("body", "bad_fields"), [
    ({"payload": {"user_id": "u"}}, {"event"}),
    ({"event": "message_received"}, {"payload"}),
    ({}, {"event", "payload"}),
    ({"event": 5, "payload": []}, {"event", "payload"}),
    ({"event": "message_received", "payload": ["u-1"]}, {"payload"}),
    ({"event": "", "payload": {}}, {"event"}),
    ([{"event": "message_received"}], {"body"}),
    ("message_received", {"body"}),
    ({"event": "message_received", "payload": {"user_id": "u", "need_help": "maybe"}},
     {"payload.need_help"}),
    ({"event": "message_received", "payload": {"user_id": "u", "need_help": "maybe",
                                               "confidence": "high", "input": ["x"]}},
     {"payload.need_help", "payload.confidence", "payload.input"}),
    ({"event": "message_received", "payload": {"user_id": {"id": 1}}}, {"payload.user_id"}),
    ({"event": "message_received", "payload": {"input": "hello"}}, {"payload.user_id"}),
    ({"event": "escalation_requested", "payload": {"lang": "fr"}}, {"payload.user_id"}),
    ({"event": "escalation_requested", "payload": {"client_id": "c", "lang": 3}},
     {"payload.lang"}),
])
async def test_wrong_shape_is_422_naming_each_field(app, client, bot, body, bad_fields):
    before = await counts(app)
    r = await post(client, bot, body)
    assert r.status_code == 422, r.text
    out = r.json()
    assert out["error"] == "invalid"
    assert {f["field"] for f in out["fields"]} == bad_fields
    assert all(f["message"] for f in out["fields"])
    for name in bad_fields:
        assert name in out["message"]
    assert await counts(app) == before


def padded(size: int) -> bytes:
    """A valid `message_received` body of exactly `size` bytes."""
    body = builders.turn("u-big", "big", pad="")
    base = len(json.dumps(body).encode())
    body["payload"]["pad"] = "x" * (size - base)
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


async def test_body_of_exactly_the_limit_is_accepted_one_byte_more_is_413(app, client, bot):
    limit = app.state.settings.max_body_bytes
    assert limit == 1024 * 1024
    r = await client.post(bot.smartly_path, content=padded(limit),
                          headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    before = await counts(app)
    r = await client.post(bot.smartly_path, content=padded(limit + 1),
                          headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    assert await counts(app) == before


async def test_chunked_body_over_the_limit_is_413_without_reading_it_all(app, client, bot):
    limit = app.state.settings.max_body_bytes
    body = builders.EndlessBody(b"x")
    before = await counts(app)
    r = await client.post(bot.smartly_path, content=body,
                          headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    assert limit < body.sent <= limit + 2 * len(body.chunk)
    assert await counts(app) == before


def test_declared_content_length_too_large_is_refused_before_the_body(live, channel):
    """Over a real socket: the server answers 413 though we never send the body."""
    bot = live.run(add_bot(live.app, channel.url))
    limit = live.settings.max_body_bytes
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall((f"POST {bot.smartly_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {limit * 10}\r\n"
                      "\r\n").encode() + b'{"event": "message_received", ')
        response = b""
        while b"\r\n\r\n" not in response:
            data = sock.recv(4096)
            if not data:
                break
            response += data
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert live.run(counts(live.app))["inbound_event"] == 0


async def test_unknown_event_is_202_and_recorded_as_ignored(app, client, bot):
    body = {"event": "survey_answered", "payload": {"user_id": "u-1", "score": 5}}
    r = await post(client, bot, body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "ignored"
    (event,) = await rows(app, InboundEvent)
    assert (event["id"], event["event"], event["status"], json.loads(event["raw"])) == (
        r.json()["event_id"], "survey_answered", "ignored", body)
    assert await rows(app, Conversation) == []
    assert await rows(app, Message) == []
    # Sent again: still 202 (and not stored twice).
    again = await post(client, bot, body)
    assert (again.status_code, again.json()["status"]) == (202, "duplicate")
    assert len(await rows(app, InboundEvent)) == 1


# --- dedupe -----------------------------------------------------------------------------------

async def test_identical_resent_body_is_a_duplicate(app, client, bot):
    body = builders.turn("u-1", "help!", need_help=True)
    first = await post(client, bot, body)
    assert first.status_code == 200 and first.json()["ticket_opened"] is True
    after_first = await counts(app)
    again = await post(client, bot, body)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["ticket_opened"] is False
    assert await counts(app) == after_first  # no message, no ticket, no event row

    # A body that differs in one field is a new event (the ticket is already open).
    changed = json.loads(json.dumps(body))
    changed["payload"]["total_processing_time"] += 1
    r = await post(client, bot, changed)
    assert r.json()["status"] == "processed"
    assert r.json()["ticket_id"] == first.json()["ticket_id"]
    assert len(await transcript(app, bot, "u-1")) == after_first["message"] + 2
    assert len(await rows(app, Ticket)) == 1


async def test_same_body_to_another_integration_is_not_a_duplicate(app, client, bot, channel):
    other = await add_bot(app, channel.url, name="other")
    body = builders.turn("u-1", "hello")
    assert (await post(client, bot, body)).json()["status"] == "processed"
    assert (await post(client, other, body)).json()["status"] == "processed"


async def test_same_body_after_the_dedupe_window_is_processed_again(tmp_path, migrated_db,
                                                                     channel):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path, dedupe_window_seconds=0.3)
    async with running(settings) as (app, client):
        bot = await add_bot(app, channel.url)
        body = builders.turn("u-1", "encore")
        assert (await post(client, bot, body)).json()["status"] == "processed"
        assert (await post(client, bot, body)).json()["status"] == "duplicate"
        (key,) = await rows(app, DedupeKey)
        await sleep_until(key["seen_at"] + dt.timedelta(seconds=0.3))
        assert (await post(client, bot, body)).json()["status"] == "processed"
        texts = [m["text"] for m in await transcript(app, bot, "u-1")]
        assert texts == ["encore", "Hi!", "encore", "Hi!"]
        assert len(await rows(app, InboundEvent)) == 2


# --- atomicity --------------------------------------------------------------------------------

async def test_a_failing_write_leaves_nothing_and_spares_its_batch(app, client, bot, channel):
    """The integration vanishes after its key was checked: the write fails mid-way.

    The dedupe key (written first) must be rolled back with everything else, the
    request must not get a 2xx, and an event written in the same batch survives.
    """
    doomed = await add_bot(app, channel.url, name="doomed")
    # Authenticate once so the integration is cached, then delete it underneath.
    r = await post(client, doomed, {"event": "message_received"})
    assert r.status_code == 422
    await execute(app, sa.delete(Integration.__table__).where(
        Integration.__table__.c.id == doomed.id))

    results = await asyncio.gather(*[
        post(client, doomed, builders.turn("u-doomed", "lost?", need_help=True)),
        post(client, bot, builders.turn("u-fine", "fine", need_help=True)),
    ])
    assert results[0].status_code == 503
    assert results[1].status_code == 200
    assert await rows(app, DedupeKey, DedupeKey.integration_id == doomed.id) == []
    assert await rows(app, InboundEvent, InboundEvent.integration_id == doomed.id) == []
    assert await rows(app, Conversation, Conversation.integration_id == doomed.id) == []
    (ticket,) = await rows(app, Ticket)
    assert ticket["id"] == results[1].json()["ticket_id"]


# --- concurrency ------------------------------------------------------------------------------

async def test_concurrent_need_help_for_one_user_opens_one_ticket(app, client, bot):
    bodies = [builders.turn("u-rush", f"help {i}", need_help=True) for i in range(25)]
    responses = await asyncio.gather(*[post(client, bot, b) for b in bodies])
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(r.json()["ticket_opened"] for r in responses) == 1
    (ticket,) = await rows(app, Ticket)
    assert {r.json()["ticket_id"] for r in responses} == {ticket["id"]}
    msgs = await transcript(app, bot, "u-rush")
    assert sorted(m["text"] for m in msgs if m["kind"] == "user") == sorted(
        b["payload"]["input"] for b in bodies)
    assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1))


async def test_concurrent_turns_of_many_users_keep_each_transcript_apart(app, client, bot):
    users = [f"u-{n}" for n in range(8)]
    bodies = [builders.turn(u, f"{u} says {i}", answer=f"bot to {u} {i}")
              for i in range(3) for u in users]
    responses = await asyncio.gather(*[post(client, bot, b) for b in bodies])
    assert all(r.json()["status"] == "processed" for r in responses)
    assert len({r.json()["event_id"] for r in responses}) == len(bodies)
    for u in users:
        msgs = await transcript(app, bot, u)
        assert [m["seq"] for m in msgs] == list(range(1, 7))
        assert {m["text"] for m in msgs} == {f"{u} says {i}" for i in range(3)} | {
            f"bot to {u} {i}" for i in range(3)}
        # Each turn's bot answer directly follows its user input.
        for user_msg, bot_msg in zip(msgs[::2], msgs[1::2], strict=True):
            turn_no = user_msg["text"].rsplit(" ", 1)[1]
            assert bot_msg["text"] == f"bot to {u} {turn_no}"
            assert bot_msg["event_id"] == user_msg["event_id"]


async def test_concurrent_identical_bodies_are_stored_once(app, client, bot):
    body = builders.turn("u-dup", "only once", need_help=True)
    others = [builders.turn("u-other", f"other {i}") for i in range(3)]
    unknown = {"event": "survey_answered", "payload": {"user_id": "u-dup"}}
    responses = await asyncio.gather(*[post(client, bot, b)
                                       for b in [body] * 6 + others + [unknown]])
    statuses = [r.json()["status"] for r in responses]
    assert sorted(statuses[:6]) == ["duplicate"] * 5 + ["processed"]
    assert statuses[6:] == ["processed"] * 3 + ["ignored"]
    assert sum(r.json()["ticket_opened"] for r in responses) == 1
    user_lines = [m["text"] for m in await transcript(app, bot, "u-dup") if m["kind"] == "user"]
    assert user_lines == ["only once"]
    assert len(await rows(app, Ticket)) == 1
    assert len(await rows(app, InboundEvent)) == 5


async def test_two_instances_on_one_database_open_one_ticket(tmp_path, migrated_db, channel):
    fresh_database(migrated_db, tmp_path)
    settings = make_settings(tmp_path)
    async with running(settings) as (app_a, client_a), running(settings) as (app_b, client_b):
        bot = await add_bot(app_a, channel.url)
        posts = [post(client, bot, builders.turn("u-both", f"help {i}", need_help=True))
                 for i in range(10) for client in (client_a, client_b)]
        responses = await asyncio.gather(*posts)
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert sum(r.json()["ticket_opened"] for r in responses) == 1
        assert len(await rows(app_a, Ticket)) == 1
        assert len(await rows(app_b, Message, Message.kind == "user")) == 20


# --- key rotation -----------------------------------------------------------------------------

async def rotate(app: Any, bot: Any, grace: dt.timedelta) -> Any:
    async with app.state.store.transaction() as tx:
        return await integrations.rotate_key(tx.conn, bot.id, grace)


async def test_rotated_key_keeps_working_for_the_grace_period_then_stops(app, client, bot):
    old_path = bot.smartly_path
    assert (await client.post(old_path, json=builders.turn("u-1", "before"))).status_code == 200
    rotated = await rotate(app, bot, dt.timedelta(seconds=0.5))
    assert rotated.key != bot.key
    new_path = f"/hooks/smartly/{bot.id}?key={rotated.key}"

    # In the grace period: both keys.
    assert (await client.post(old_path, json=builders.turn("u-1", "old"))).status_code == 200
    assert (await client.post(new_path, json=builders.turn("u-1", "new"))).status_code == 200

    expires = rotated.integration.previous_key_expires_at
    await sleep_until(expires)
    before = await counts(app)
    r = await client.post(old_path, json=builders.turn("u-1", "too late"))
    assert r.status_code == 401
    assert await counts(app) == before
    assert (await client.post(new_path, json=builders.turn("u-1", "new 2"))).status_code == 200
    texts = [m["text"] for m in await transcript(app, bot, "u-1") if m["kind"] == "user"]
    assert texts == ["before", "old", "new", "new 2"]


async def test_rotation_without_grace_stops_the_old_key_at_once(app, client, bot):
    rotated = await rotate(app, bot, dt.timedelta(0))
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "old"))
    assert r.status_code == 401
    r = await client.post(f"/hooks/smartly/{bot.id}?key={rotated.key}",
                          json=builders.turn("u-1", "new"))
    assert r.status_code == 200


async def test_second_rotation_drops_the_first_key(app, client, bot):
    first = await rotate(app, bot, dt.timedelta(hours=1))
    second = await rotate(app, bot, dt.timedelta(hours=1))
    paths = {k: f"/hooks/smartly/{bot.id}?key={k}" for k in (bot.key, first.key, second.key)}
    assert (await client.post(paths[second.key], json=builders.turn())).status_code == 200
    assert (await client.post(paths[first.key], json=builders.turn())).status_code == 200
    assert (await client.post(paths[bot.key], json=builders.turn())).status_code == 401


async def test_a_client_gone_mid_body_gets_no_answer_and_nothing_is_stored(app, bot):
    """The body never completes (the client hung up): nothing to answer, nothing stored."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b'{"event": "message_re', "more_body": True},
                {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path, _, query = bot.smartly_path.partition("?")
    before = await counts(app)
    await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
               "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
               "query_string": query.encode(), "root_path": "", "headers": [],
               "client": ("127.0.0.1", 1), "server": ("testserver", 80), "app": app},
              receive, send)
    assert sent == []
    assert await counts(app) == before
