"""Chatlayer Webhook channel in: POST /hooks/chatlayer/{id} with the bot's responses."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from connector.storage.models import Conversation, InboundEvent, Message, StreamEvent
from tests import builders
from tests.conftest import add_bot, add_user, sign_in
from tests.helpers import counts, execute, rows

pytestmark = pytest.mark.anyio

QUICK_REPLIES = {"text": "Which topic?", "quick_replies": [
    {"content_type": "text", "title": "Orders", "payload": "ORDERS::{\"a\":1}",
     "image_url": "https://cdn.example/o.png"},
    {"content_type": "text", "title": "Returns", "payload": "opaque|not=parsed"}]}
BUTTONS = {"attachment": {"type": "template", "payload": {
    "template_type": "button", "text": "How can we reach you?",
    "buttons": [{"type": "web_url", "title": "Site", "url": "https://example.com"},
                {"type": "postback", "title": "Call me", "payload": "CALL_ME"},
                {"type": "phone_number", "title": "Phone", "payload": "+3225550100"}]}}}
CAROUSEL = {"attachment": {"type": "template", "payload": {
    "template_type": "generic", "elements": [
        {"title": "Red shoes", "subtitle": "42 EUR", "image_url": "https://cdn.example/r.png",
         "item_url": "https://shop.example/r",
         "default_action": {"type": "web_url", "url": "https://shop.example/r"},
         "buttons": [{"type": "postback", "title": "Buy", "payload": "BUY_RED"}]},
        {"title": "Blue shoes", "subtitle": "45 EUR", "image_url": "https://cdn.example/b.png",
         "buttons": [{"type": "postback", "title": "Buy", "payload": "BUY_BLUE"}]}]}}}
LIST = {"attachment": {"type": "template", "payload": {
    "template_type": "list", "elements": [
        {"title": "Step 1: sign in", "subtitle": "with your e-mail"},
        {"title": "Step 2: open Orders"}],
    "buttons": [{"type": "postback", "title": "More", "payload": "MORE"}]}}}
IMAGE = {"attachment": {"type": "image", "payload": {"url": "https://cdn.example/map.png"}}}
VIDEO = {"attachment": {"type": "video", "payload": {"url": "https://cdn.example/howto.mp4"}}}


def visible_words(message: dict[str, Any]) -> list[str]:
    """What a reader of the transcript line must find for each message kind."""
    if "text" in message:
        return [message["text"]]
    attachment = message["attachment"]
    payload = attachment["payload"]
    if attachment["type"] != "template":
        return [attachment["type"]]
    if "text" in payload:
        return [payload["text"]]
    return [e["title"] for e in payload["elements"]]


async def bot_messages(app: Any, bot: Any, end_user: str) -> list[dict[str, Any]]:
    (conv,) = await rows(app, Conversation, Conversation.integration_id == bot.id,
                         Conversation.end_user_id == end_user)
    return await rows(app, Message, Message.conversation_id == conv["id"], order=Message.seq)


@pytest.mark.parametrize("message", [
    {"text": "Hello from the bot"}, QUICK_REPLIES, BUTTONS, CAROUSEL, LIST, IMAGE, VIDEO,
], ids=["text", "quick_replies", "button", "carousel", "list", "image", "video"])
async def test_every_message_kind_is_kept_whole_with_a_readable_text(app, client, bot, message):
    r = await client.post(bot.chatlayer_path, json=builders.chatlayer("u-1", bot.verify_token,
                                                                       message))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "processed"
    (stored,) = await bot_messages(app, bot, "u-1")
    assert stored["kind"] == "bot"
    assert stored["body"] == message  # quick replies, buttons, payloads: exactly as shown
    assert stored["text"].strip()
    for word in visible_words(message):
        assert word in stored["text"]
    (event,) = await rows(app, InboundEvent)
    assert (event["source"], event["status"], event["id"]) == ("chatlayer", "processed",
                                                               stored["event_id"])


@pytest.mark.parametrize("id_field", ["recipient", "sender", "senderId"])
async def test_user_named_by_recipient_sender_or_sender_id(app, client, bot, id_field):
    body = builders.chatlayer("user-abc", bot.verify_token, {"text": "hi"}, id_field=id_field)
    r = await client.post(bot.chatlayer_path, json=body)
    assert r.status_code == 200, r.text
    (conv,) = await rows(app, Conversation)
    assert conv["end_user_id"] == "user-abc"


async def test_numeric_sender_id_is_one_user(app, client, bot):
    body = {"verifyToken": bot.verify_token, "senderId": 4242, "message": {"text": "a"}}
    assert (await client.post(bot.chatlayer_path, json=body)).status_code == 200
    body = builders.chatlayer("4242", bot.verify_token, {"text": "b"})
    assert (await client.post(bot.chatlayer_path, json=body)).status_code == 200
    (conv,) = await rows(app, Conversation)
    assert conv["end_user_id"] == "4242"
    assert [m["text"] for m in await bot_messages(app, bot, "4242")] == ["a", "b"]


async def test_bot_message_joins_the_open_tickets_transcript(app, client, bot):
    r = await client.post(bot.smartly_path, json=builders.turn("u-5", "humain", need_help=True))
    ticket_id = r.json()["ticket_id"]
    assert ticket_id is not None
    r = await client.post(bot.chatlayer_path, json=builders.chatlayer(
        "u-5", bot.verify_token, BUTTONS))
    assert r.status_code == 200, r.text
    assert r.json()["ticket_id"] == ticket_id
    msgs = await bot_messages(app, bot, "u-5")
    last = msgs[-1]
    assert (last["kind"], last["ticket_id"], last["body"]) == ("bot", ticket_id, BUTTONS)
    assert last["seq"] == max(m["seq"] for m in msgs)
    # The agent console hears of it through the stored stream.
    events = await rows(app, StreamEvent, StreamEvent.type == "message.created",
                        StreamEvent.ticket_id == ticket_id)
    assert events[-1]["payload"]["message"]["id"] == last["id"]
    assert events[-1]["payload"]["message"]["message"] == BUTTONS


async def test_bot_message_with_no_open_ticket_has_none(app, client, bot):
    r = await client.post(bot.chatlayer_path, json=builders.chatlayer("u-6", bot.verify_token))
    assert r.status_code == 200
    assert r.json()["ticket_id"] is None
    (msg,) = await bot_messages(app, bot, "u-6")
    assert msg["ticket_id"] is None


@pytest.mark.parametrize("case", ["wrong", "missing", "not-a-string", "other-integration",
                                  "unknown-integration", "not-an-object"])
async def test_wrong_verify_token_is_401_and_stores_nothing(app, client, bot, channel, case):
    other = await add_bot(app, channel.url, name="other")
    body: Any = builders.chatlayer("u-1", bot.verify_token)
    path = bot.chatlayer_path
    if case == "wrong":
        body["verifyToken"] = bot.verify_token + "x"
    elif case == "missing":
        del body["verifyToken"]
    elif case == "not-a-string":
        body["verifyToken"] = [bot.verify_token]
    elif case == "other-integration":
        body["verifyToken"] = other.verify_token
    elif case == "unknown-integration":
        path = "/hooks/chatlayer/nosuchintegration"
    else:
        body = [body]
    before = await counts(app)
    r = await client.post(path, json=body)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert await counts(app) == before


@pytest.mark.parametrize(("body", "field"), [
    ({"message": {"text": "x"}}, "recipient.id"),
    ({"recipient": {"id": ""}, "message": {"text": "x"}}, "recipient.id"),
    ({"recipient": {"id": "u"}}, "message"),
    ({"recipient": {"id": "u"}, "message": {}}, "message"),
    ({"recipient": {"id": "u"}, "message": "hello"}, "message"),
    ({"recipient": {}, "message": {"text": "x"}}, "recipient.id"),
])
async def test_wrong_shape_with_the_right_token_is_422(app, client, bot, body, field):
    before = await counts(app)
    r = await client.post(bot.chatlayer_path, json={"verifyToken": bot.verify_token, **body})
    assert r.status_code == 422, r.text
    assert field in {f["field"] for f in r.json()["fields"]}
    assert await counts(app) == before


async def test_malformed_json_is_400(app, client, bot):
    r = await client.post(bot.chatlayer_path, content=b'{"verifyToken": ',
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] == "malformed_json"


async def test_body_over_the_limit_is_413(app, client, bot):
    body = builders.chatlayer("u-1", bot.verify_token,
                              {"text": "x" * app.state.settings.max_body_bytes})
    before = await counts(app)
    r = await client.post(bot.chatlayer_path, json=body)
    assert r.status_code == 413
    assert await counts(app) == before


async def test_the_verify_token_is_never_stored_nor_shown_to_staff(app, client, bot):
    """The token is what /hooks/chatlayer accepts: an agent who saw it could post as the bot."""
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "help", need_help=True))
    ticket_id = r.json()["ticket_id"]
    r = await client.post(bot.chatlayer_path,
                          json=builders.chatlayer("u-1", bot.verify_token, BUTTONS))
    assert r.status_code == 200
    (stored,) = await rows(app, InboundEvent, InboundEvent.id == r.json()["event_id"])
    assert bot.verify_token not in stored["raw"]
    assert orjson.loads(stored["raw"])["message"] == BUTTONS
    # A row stored by an earlier version still holds the token: views drop it too.
    old = await client.post(bot.chatlayer_path,
                            json=builders.chatlayer("u-1", bot.verify_token, {"text": "old"}))
    await execute(app, sa.update(InboundEvent.__table__).where(
        InboundEvent.__table__.c.id == old.json()["event_id"]).values(raw=orjson.dumps(
            builders.chatlayer("u-1", bot.verify_token, {"text": "old"})).decode()))
    await add_user(app, "alice")
    async with AsyncExitStack() as stack:
        alice = await sign_in(stack, app, "alice")
        assert (await alice.post(f"/api/tickets/{ticket_id}/claim")).status_code == 200
        got = await alice.get(f"/api/tickets/{ticket_id}")
    assert got.status_code == 200
    assert bot.verify_token not in got.text
    raws = [m["raw"] for m in got.json()["messages"] if m["kind"] == "bot" and m["raw"]]
    assert {"recipient": {"id": "u-1"}, "message": BUTTONS} in raws
    assert {"recipient": {"id": "u-1"}, "message": {"text": "old"}} in raws
