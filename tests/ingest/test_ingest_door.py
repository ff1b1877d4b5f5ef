"""Webhook input the writer could not store is refused at the door, alone, with a 4xx that
names the field; nothing of it is stored, and other events are not affected."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import AsyncExitStack
from typing import Any

import pytest
import sqlalchemy as sa

from connector.domain import tickets
from connector.storage.models import InboundEvent, Message
from tests import builders
from tests.conftest import add_bot, add_user, sign_in
from tests.helpers import actor, execute, rows

pytestmark = pytest.mark.anyio


def nested(depth: int, leaf: Any = "deep") -> Any:
    value = leaf
    for _ in range(depth - 1):
        value = {"x": value}
    return {"x": value} if depth else leaf


def turn_raw(user: str, field: str, literal: str, *, need_help: bool = False) -> bytes:
    """A Smartly turn whose `field` holds `literal`, a JSON text written as it is (json.dumps
    cannot write a lone surrogate escape or a 100-digit integer the way a platform may)."""
    body = builders.turn(user, "hello", need_help=need_help)
    body["payload"][field] = "@@"
    return json.dumps(body).replace('"@@"', literal).encode()


#: (field the error must name, the literal put into that field of a turn)
BAD_TURNS = [
    ("payload.input", '"\\ud800"'),
    ("payload.user_id", '"\\udfff"'),
    ("payload.skill_id", "1" + "0" * 30),
    ("payload.skill_id", "-" + "9" * 25),
    ("payload.confidence", "1e400"),
    ("payload.custom_entities", "[" * 300 + "]" * 300),
    ("payload.intent", '{"\\ud800": 1}'),
    ("payload.intent", "123456789012345678901234567890"),
    ("payload.nlu_model", '{"version": -99999999999999999999}'),
]


@pytest.mark.parametrize(("field", "literal"), BAD_TURNS,
                         ids=[f"{f}-{n}" for n, (f, _) in enumerate(BAD_TURNS)])
async def test_unstorable_turn_is_422_naming_the_field_and_stores_nothing(
        app, client, bot, field, literal):
    raw = turn_raw("u-bad", field.split(".")[-1], literal)
    r = await client.post(bot.smartly_path, content=raw,
                          headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["fields"][0]["field"].startswith(field)
    assert await rows(app, InboundEvent) == []


@pytest.mark.parametrize("depth", [33, 300, 990, 1023, 1024, 5000])
async def test_deep_nesting_is_422_at_the_door(app, client, bot, depth):
    body = builders.turn("u-deep", "hi", need_help=True)
    body["payload"]["payload"] = "@@"
    raw = json.dumps(body).replace('"@@"', '{"x":' * depth + "1" + "}" * depth)
    r = await client.post(bot.smartly_path, content=raw.encode(),
                          headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "nested deeper than" in r.json()["message"]
    assert await rows(app, InboundEvent) == []


async def test_nesting_within_the_limit_is_stored_and_shown(app, client, bot):
    body = builders.turn("u-ok", "hi", need_help=True)
    body["payload"]["payload"] = nested(29)  # the body itself is 3 levels: 32 in all
    r = await client.post(bot.smartly_path, json=body)
    assert r.status_code == 200, r.text


async def test_a_template_with_odd_shapes_is_stored_with_a_placeholder(app, client, bot):
    odd = [{"attachment": {"type": "template", "payload": {"elements": 5}}},
           {"attachment": {"type": "template", "payload": {"elements": [5, None, {"title": 3}],
                                                           "template_type": ["x"]}}},
           {"attachment": {"type": ["image"], "payload": "x"}},
           {"attachment": 7}, {"text": 12}]
    for n, message in enumerate(odd):
        r = await client.post(bot.chatlayer_path,
                              json=builders.chatlayer(f"u-{n}", bot.verify_token, message))
        assert r.status_code == 200, (message, r.text)
    texts = {m["text"] for m in await rows(app, Message)}
    assert texts == {"[template]", "[message]"}


async def test_bad_events_for_one_bot_never_fail_good_events_for_another(app, client, bot,
                                                                         channel):
    other = await add_bot(app, channel.url, name="other")
    bad = [turn_raw("u-x", field.split(".")[-1], literal) for field, literal in BAD_TURNS]
    bad_chatlayer = [
        b'{"verifyToken": "%s", "recipient": {"id": "u"}, "message": {"text": "\\ud800"}}'
        % other.verify_token.encode(),
        b'{"verifyToken": "%s", "recipient": {"id": "u"}, "message": {"n": %s}}'
        % (other.verify_token.encode(), b"9" * 40),
        b'{"verifyToken": "%s", "recipient": {"id": "u"}, "message": %s}'
        % (other.verify_token.encode(), b'{"a":' * 300 + b"1" + b"}" * 300)]
    headers = {"content-type": "application/json"}
    for _ in range(3):
        good = [builders.turn(f"u-{i}", f"text {i}") for i in range(40)]
        answers = await asyncio.gather(
            *[client.post(bot.smartly_path, json=body) for body in good],
            *[client.post(other.smartly_path, content=raw, headers=headers) for raw in bad],
            *[client.post(other.chatlayer_path, content=raw, headers=headers)
              for raw in bad_chatlayer])
        assert [a.status_code for a in answers[:40]] == [200] * 40
        assert all(a.status_code == 422 for a in answers[40:]), [a.text for a in answers[40:]]
        for body, answer in zip(good, answers, strict=False):
            (stored,) = await rows(app, InboundEvent,
                                   InboundEvent.id == answer.json()["event_id"])
            assert body["payload"]["input"] in stored["raw"]
    assert await rows(app, InboundEvent, InboundEvent.integration_id == other.id) == []


async def test_a_ticket_with_a_deeply_nested_stored_body_still_opens(app, client, bot):
    """Rows stored before the door was there, or by another version, must still be read."""
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "help", need_help=True))
    ticket_id, event_id = r.json()["ticket_id"], r.json()["event_id"]
    await execute(app, sa.update(InboundEvent.__table__).where(
        InboundEvent.__table__.c.id == event_id).values(
        raw='{"payload":' + "[" * 1500 + "]" * 1500 + "}"))
    alice = actor(await add_user(app, "alice", "supervisor"))
    async with app.state.store.transaction() as tx:
        await tickets.claim(tx, ticket_id, alice)
    async with AsyncExitStack() as stack:
        c = await sign_in(stack, app, "alice")
        got = await c.get(f"/api/tickets/{ticket_id}")
    assert got.status_code == 200, got.text
    assert any(isinstance(m["raw"], str) for m in got.json()["messages"])


@pytest.mark.parametrize("raw", [b"[" * 100000, b"{" * 100000, b'{"a":' * 50000],
                         ids=["arrays", "braces", "objects"])
async def test_hostile_body_to_an_unknown_chatlayer_hook_is_4xx_and_logs_one_line(
        app, client, caplog, raw):
    caplog.set_level(logging.INFO)
    r = await client.post("/hooks/chatlayer/doesnotexist", content=raw,
                          headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"] in {"malformed_json", "invalid", "unauthorized"}
    assert [rec for rec in caplog.records if rec.levelno >= logging.WARNING] == []
    assert not any(rec.exc_info for rec in caplog.records)


@pytest.mark.parametrize("token", ['"\\ud800"', '"\\udc00x"', '"tok\\u0000"', '5', '["x"]'])
async def test_unencodable_verify_token_is_4xx_not_500(app, client, bot, token):
    raw = b'{"verifyToken": %s, "recipient": {"id": "u"}, "message": {"text": "hi"}}' % (
        token.encode())
    r = await client.post(bot.chatlayer_path, content=raw,
                          headers={"content-type": "application/json"})
    assert r.status_code in (401, 422), r.text
    assert await rows(app, InboundEvent) == []
