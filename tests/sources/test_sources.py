"""`connector.sources`: the registry, each source's parse of the documented bodies, the
event as the writer process gets it, and a source added to an app getting its webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpx
import orjson
import pytest

from connector.app import create_app
from connector.ingest.inbound import BadInput, Inbound, fingerprint, public_raw
from connector.ingest.process import shipped
from connector.settings import Settings
from connector.sources import SECRET_FIELDS, SOURCES, Source, webhook_urls
from connector.sources.base import Auth
from connector.sources.chatlayer import message_text
from connector.storage.models import Conversation, InboundEvent, Message
from tests import builders
from tests.conftest import add_bot
from tests.helpers import rows


def parse(name: str, body: Any) -> Inbound:
    raw = orjson.dumps(body)
    return SOURCES[name].parse("i-1", body, raw)


def test_the_registry() -> None:
    assert list(SOURCES) == ["smartly", "chatlayer", "chatlayer-offloading"]
    assert all(s.name == name and s.segment == name for name, s in SOURCES.items())
    assert [s.auth for s in SOURCES.values()] == ["key", "token", "key"]
    assert [s.kinds for s in SOURCES.values()] == [
        ("smartly",), ("smartly",), ("chatlayer-offloading",)]
    assert SOURCES["chatlayer"].token_field == "verifyToken"
    assert SECRET_FIELDS == ("verifyToken",)


def test_webhook_urls_carry_the_key_only_when_it_is_shown() -> None:
    assert webhook_urls("https://c.example", "abc") == {
        "chatlayer_webhook_url": "https://c.example/hooks/chatlayer/abc"}
    assert webhook_urls("https://c.example", "abc", "K") == {
        "smartly_webhook_url": "https://c.example/hooks/smartly/abc?key=K",
        "chatlayer_webhook_url": "https://c.example/hooks/chatlayer/abc",
        "offloading_webhook_url": None}
    # An offloading integration: only its own URL, the others null.
    assert webhook_urls("https://c.example", "abc", "K", "chatlayer-offloading") == {
        "smartly_webhook_url": None, "chatlayer_webhook_url": None,
        "offloading_webhook_url": "https://c.example/hooks/chatlayer-offloading/abc?key=K"}


def test_smartly_turn() -> None:
    body = builders.turn("u-1", "hello", answer="Hi!")
    inbound = parse("smartly", body)
    assert (inbound.source, inbound.integration_id, inbound.event) == (
        "smartly", "i-1", "message_received")
    assert inbound.fingerprint == fingerprint(orjson.dumps(body))
    assert orjson.loads(inbound.raw) == body
    assert inbound.known and inbound.end_user_id == "u-1"
    assert inbound.messages == [("user", "hello", None), ("bot", "Hi!", {"text": "Hi!"})]
    assert inbound.context is not None
    assert inbound.context["intent"] == body["payload"]["intent"]
    assert "input" not in inbound.context
    assert (inbound.lang, inbound.platform) == ("fr-fr", "webchat")
    assert inbound.handover is None and inbound.skill_id is None


def test_smartly_turn_that_needs_help() -> None:
    inbound = parse("smartly", builders.turn("u-1", "help", answer=None, need_help=True,
                                             skill_id=42, handover_category_name="billing"))
    assert inbound.messages == [("user", "help", None)]
    assert (inbound.handover, inbound.skill_id, inbound.category) == (
        "need_help", "42", "billing")


def test_smartly_escalation_reads_the_documented_spelling() -> None:
    inbound = parse("smartly", builders.escalation("c-9", lang="en", plateform="whatsapp"))
    assert inbound.known and inbound.end_user_id == "c-9"
    assert not inbound.messages
    assert (inbound.lang, inbound.platform) == ("en", "whatsapp")
    assert (inbound.handover, inbound.skill_id) == ("escalation_requested", "123")


def test_smartly_other_events_are_not_acted_on() -> None:
    inbound = parse("smartly", {"event": "session_started", "payload": {"x": 1}})
    assert not inbound.known and inbound.end_user_id is None and inbound.messages is None


@pytest.mark.parametrize(("body", "field"), [
    ([1, 2], "body"),
    ({"payload": {}}, "event"),
    (builders.turn(user="", client_id=""), "payload.user_id"),
    (builders.turn(lang="x" * 51), "payload.lang"),
])
def test_smartly_bad_input_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse("smartly", body)
    assert caught.value.errors[0]["field"] == field


@pytest.mark.parametrize("id_field", ["recipient", "sender", "senderId"])
def test_chatlayer_bot_message(id_field: str) -> None:
    body = builders.chatlayer("u-2", "the-token", {"text": "bot says"}, id_field=id_field)
    inbound = parse("chatlayer", body)
    assert (inbound.source, inbound.event, inbound.end_user_id) == (
        "chatlayer", "bot_message", "u-2")
    assert inbound.fingerprint == fingerprint(orjson.dumps(body))
    assert "the-token" not in inbound.raw and "verifyToken" not in orjson.loads(inbound.raw)
    assert inbound.known
    assert inbound.messages == [("bot", "bot says", {"text": "bot says"})]
    assert inbound.context == {"source": "chatlayer"}
    assert inbound.handover is None and inbound.lang is None


def test_chatlayer_needs_an_end_user_and_a_message() -> None:
    with pytest.raises(BadInput) as caught:
        parse("chatlayer", {"verifyToken": "t", "message": {"text": "x"}})
    assert caught.value.errors == [{"field": "recipient.id", "message":
                                    "recipient.id, senderId or sender.id is required"}]
    with pytest.raises(BadInput) as caught:
        parse("chatlayer", {"verifyToken": "t", "message": {}, "senderId": "u"})
    assert caught.value.errors[0]["field"] == "message"


@pytest.mark.parametrize(("message", "text"), [
    ({"text": "hi", "quick_replies": []}, "hi"),
    ({"attachment": {"type": "template", "payload": {"template_type": "button",
                                                      "text": "Reach you?"}}}, "Reach you?"),
    ({"attachment": {"type": "template", "payload": {
        "template_type": "generic", "elements": [{"title": "A"}, {"title": "B"}]}}}, "A | B"),
    ({"attachment": {"type": "template", "payload": {"template_type": "list"}}}, "[list]"),
    ({"attachment": {"type": "image", "payload": {"url": "https://x/i.png"}}}, "[image]"),
    ({"attachment": "odd"}, "[message]"),
    ([], "[message]"),
])
def test_message_text(message: Any, text: str) -> None:
    assert message_text(message) == text


def test_public_raw_drops_the_secrets() -> None:
    stored = orjson.dumps({"verifyToken": "t", "message": {"text": "x"}}).decode()
    assert public_raw(stored, SECRET_FIELDS) == {"message": {"text": "x"}}
    assert public_raw("not json", SECRET_FIELDS) == "not json"


@pytest.mark.parametrize("body", [
    builders.turn("u-1", "hello"), builders.turn("u-1", "help", need_help=True),
    builders.escalation("c-1"), {"event": "other", "payload": {}},
    builders.chatlayer("u-1", "t", {"text": "x"}),
], ids=["turn", "need_help", "escalation", "other", "chatlayer"])
def test_the_writer_process_rebuilds_the_event_it_is_shipped(body: dict[str, Any]) -> None:
    inbound = parse("chatlayer" if "verifyToken" in body else "smartly", body)
    wire = orjson.loads(orjson.dumps(shipped(inbound)))
    rebuilt = Inbound(*wire)
    assert orjson.dumps(shipped(rebuilt)) == orjson.dumps(shipped(inbound))
    assert rebuilt.known == inbound.known and rebuilt.raw == inbound.raw


class Echo(Source):
    """A platform of the tests' own: `{"user": ..., "text": ...}`, the key in the query."""

    name: ClassVar[str] = "echo"
    label: ClassVar[str] = "Echo"
    segment: ClassVar[str] = "echo"
    auth: ClassVar[Auth] = "key"

    def parse(self, integration_id: str, body: Any, raw: bytes) -> Inbound:
        if not isinstance(body, dict) or not isinstance(body.get("user"), str):
            raise BadInput([{"field": "user", "message": "required"}])
        return Inbound(self.name, integration_id, "said", fingerprint(raw), raw.decode(), True,
                       body["user"], [("user", str(body.get("text")), None)], None)


@asynccontextmanager
async def serving(settings: Settings, sources: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    application = create_app(settings, sources)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield application, c


@pytest.mark.anyio
async def test_a_source_added_to_an_app_gets_its_webhook(settings, channel) -> None:
    async with serving(settings, {**SOURCES, "echo": Echo()}) as (app, client):
        bot = await add_bot(app, channel.url)
        path = f"/hooks/echo/{bot.id}"
        r = await client.post(f"{path}?key={bot.key}", json={"user": "u-7", "text": "hello"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "processed"
        assert (await client.post(f"{path}?key=wrong", json={"user": "u-7"})).status_code == 401
        assert (await client.post(f"{path}?key={bot.key}", json={})).status_code == 422
        assert (await client.get(path)).status_code == 405  # routed: POST only
        # The built-in sources are served as before.
        r = await client.post(bot.smartly_path, json=builders.turn("u-7", "hi"))
        assert r.status_code == 200, r.text
        (event, _) = await rows(app, InboundEvent)
        assert (event["source"], event["event"], event["status"]) == ("echo", "said", "processed")
        (conv,) = await rows(app, Conversation)
        assert conv["end_user_id"] == "u-7"
        texts = [m["text"] for m in await rows(app, Message)]
        assert texts == ["hello", "hi", "Hi!"]


@pytest.mark.anyio
async def test_an_app_without_the_source_does_not_route_it(settings, channel) -> None:
    async with serving(settings, SOURCES) as (app, client):
        bot = await add_bot(app, channel.url)
        r = await client.post(f"/hooks/echo/{bot.id}?key={bot.key}", json={"user": "u"})
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"
