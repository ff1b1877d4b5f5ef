"""Fuzzing both webhook routes of a real server: hostile bodies sent concurrently with valid
ones never get a 5xx, never disturb the valid ones, and never leave anything stored.

Each example sends, at the same time, valid Smartly turns and Chatlayer bot messages (each
carrying a unique marker) and a mix of malformed, oversized, deeply nested, non-UTF-8,
out-of-range and wrongly keyed bodies to both routes of one integration, then checks:
every valid event is answered 200 with its own event id and stored exactly once; every
hostile body is answered with a 4xx (or a 2xx if it happens to be valid) and no 5xx; the
number of stored events grows by exactly the number of 2xx answers that name an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.storage.migrate import upgrade
from connector.storage.models import InboundEvent
from tests import builders
from tests.conftest import LiveServer, add_bot, free_port, fresh_database, make_settings
from tests.helpers import postgres_database, rows

MAX_BODY = 32 * 1024
VALID_PER_EXAMPLE = 12

json_leaf = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20)

#: JSON texts that are valid JSON but hold what no storage takes.
hostile_literal = st.one_of(
    st.sampled_from(['"\\ud800"', '"x\\udfffy"', '{"\\udc00": 1}', '"a\\u0000b"', "1e400",
                     "-1e999", '"\\ud83d"']),
    st.integers(min_value=20, max_value=60).map(lambda n: "9" * n),
    st.integers(min_value=20, max_value=60).map(lambda n: "-" + "1" * n),
    st.integers(min_value=30, max_value=3000).map(lambda d: "[" * d + "]" * d),
    st.integers(min_value=30, max_value=1200).map(lambda d: '{"a":' * d + "0" + "}" * d),
)
turn_fields = st.sampled_from(["input", "answer", "user_id", "client_id", "skill_id", "lang",
                               "intent", "state_name", "confidence", "need_help",
                               "handover_category_name", "nlu_model", "custom_entities",
                               "platform", "muted", "client_session_id"])


#: Fixed, so that a draw's bounds do not change between examples (turns are numbered).
TRUNCATABLE = json.dumps(builders.turn("fz", "x")).encode()


def with_literal(body: dict[str, Any], path: list[str], literal: str) -> bytes:
    """`body` as JSON with the value at `path` replaced by the raw JSON text `literal`."""
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "@@HOLE@@"
    return json.dumps(body).replace('"@@HOLE@@"', literal, 1).encode()


@st.composite
def hostile_body(draw: st.DrawFn, token: str) -> tuple[str, bytes]:
    """(route, raw body) of one hostile request."""
    kind = draw(st.sampled_from(["turn-literal", "chatlayer-literal", "bytes", "not-utf8",
                                 "oversized", "wrong-shape", "random-json", "wrong-token",
                                 "odd-template", "truncated"]))
    route = draw(st.sampled_from(["smartly", "chatlayer"]))
    if kind == "turn-literal":
        return "smartly", with_literal(builders.turn("fz", "x"), ["payload", draw(turn_fields)],
                                       draw(hostile_literal))
    if kind == "chatlayer-literal":
        where = draw(st.sampled_from([["message", "text"], ["recipient", "id"], ["verifyToken"],
                                      ["message", "attachment"], ["senderId"]]))
        return "chatlayer", with_literal(builders.chatlayer("fz", token), where,
                                         draw(hostile_literal))
    if kind == "bytes":
        return route, draw(st.binary(max_size=200))
    if kind == "not-utf8":
        raw = json.dumps(builders.turn("fz", "@@")).encode()
        return route, raw.replace(b"@@", draw(st.sampled_from(
            [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])))
    if kind == "oversized":
        return route, json.dumps(builders.turn("fz", "x" * (MAX_BODY + draw(
            st.integers(min_value=1, max_value=5000))))).encode()
    if kind == "wrong-shape":
        return route, orjson.dumps(draw(st.sampled_from([
            {"event": 5, "payload": {}}, {"event": "message_received", "payload": []},
            {"event": "message_received", "payload": {"user_id": {"a": 1}}},
            {"event": "message_received", "payload": {"user_id": "u", "skill_id": 2**63}},
            {"event": "", "payload": {}}, [], "text", 42, None,
            {"verifyToken": token, "message": {}, "recipient": {"id": "u"}},
            {"verifyToken": token, "message": "hi", "recipient": {"id": "u"}},
            {"verifyToken": token, "message": {"text": "hi"}},
            {"verifyToken": 5, "message": {"text": "hi"}, "recipient": {"id": "u"}},
        ])))
    if kind == "random-json":
        return route, orjson.dumps(draw(json_value))
    if kind == "wrong-token":
        return "chatlayer", orjson.dumps(builders.chatlayer("fz", token + "x"))
    if kind == "odd-template":
        return "chatlayer", orjson.dumps(builders.chatlayer("fz", token, {"attachment": {
            "type": "template", "payload": {"elements": draw(json_value)}}}))
    return route, TRUNCATABLE[:draw(st.integers(min_value=1, max_value=len(TRUNCATABLE) - 1))]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           migrated_db: Any) -> Any:
    """A real server on a real database: accepted oddities must be storable on both."""
    tmp = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    overrides: dict[str, Any] = {"port": port, "public_url": f"http://127.0.0.1:{port}",
                                 "max_body_bytes": MAX_BODY}
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            overrides["database_url"] = stack.enter_context(postgres_database())
            upgrade(make_settings(tmp, **overrides))
        else:
            fresh_database(migrated_db, tmp)
        live = LiveServer(make_settings(tmp, **overrides)).start()
        stack.callback(live.stop)
        yield live, live.run(add_bot(live.app, "http://127.0.0.1:9/channel"))


async def post(client: httpx.AsyncClient, path: str, raw: bytes) -> httpx.Response:
    return await client.post(path, content=raw, headers={"content-type": "application/json"})


async def one_round(live: Any, bot: Any, hostile: list[tuple[str, bytes]]) -> None:
    before = len(live.run(rows(live.app, InboundEvent)))
    paths = {"smartly": bot.smartly_path, "chatlayer": bot.chatlayer_path}
    valid: list[tuple[str, bytes, str]] = []
    for n in range(VALID_PER_EXAMPLE):
        marker = uuid.uuid4().hex
        if n % 3:
            body = builders.turn(f"user-{n}", f"valid {marker}", need_help=n % 4 == 1)
            valid.append((paths["smartly"], orjson.dumps(body), marker))
        else:
            body = builders.chatlayer(f"user-{n}", bot.verify_token, {"text": f"bot {marker}"})
            valid.append((paths["chatlayer"], orjson.dumps(body), marker))
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        requests = [post(client, path, raw) for path, raw, _ in valid]
        requests += [post(client, paths[route], raw) for route, raw in hostile]
        answers = await asyncio.gather(*requests)
    for answer in answers:
        assert answer.status_code < 500, answer.text
        assert answer.headers["content-type"] == "application/json", answer.text
    stored = {e["id"]: e for e in live.run(rows(live.app, InboundEvent))}
    for (_, _, marker), answer in zip(valid, answers, strict=False):
        assert answer.status_code == 200, answer.text
        event_id = answer.json()["event_id"]
        assert marker in stored[event_id]["raw"]  # its own event, not another request's
        assert sum(marker in e["raw"] for e in stored.values()) == 1  # stored once
    for answer in answers[len(valid):]:
        if answer.status_code >= 300:
            assert {"error", "message"} <= set(answer.json())
    named = {a.json()["event_id"] for a in answers
             if a.status_code < 300 and a.json().get("event_id") is not None}
    assert named <= set(stored)
    assert len(stored) - before == len(named)  # nothing of a refused body was stored


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_bodies_never_disturb_valid_events(server, data):
    live, bot = server
    hostile = data.draw(st.lists(hostile_body(bot.verify_token), min_size=1, max_size=10))
    asyncio.run(one_round(live, bot, hostile))
