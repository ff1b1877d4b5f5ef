"""Chatlayer Offloading in, Chatlayer's conversation actions API out, through the real
app and a fake Chatlayer API (a real HTTP server), on SQLite and PostgreSQL: the health
check, messages before the offload kept as the ticket's transcript, the offload answered
only once its ticket is committed, replies in order through retries, and handback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from connector.accounts import integrations
from connector.storage.models import InboundEvent, Message, Ticket
from tests import builders
from tests.builders import bot_says, offload, offloading_messages, user_says
from tests.conftest import on_each_dialect
from tests.fakes import FakeChatlayerApi, Reply
from tests.helpers import rows, wait_settled
from tests.web import test_api_tickets
from tests.web.test_api_tickets import claim

pytestmark = pytest.mark.anyio

TOKEN = "cl-api-token-1"
#: `await team("alice", "root")`: signed-in clients (the fixture of test_api_tickets).
team = test_api_tickets.team


settings = on_each_dialect()


@pytest.fixture
def api() -> Iterator[FakeChatlayerApi]:
    fake = FakeChatlayerApi().start()
    yield fake
    fake.stop()


@dataclass
class Offloading:
    id: str
    key: str
    verify_token: str

    @property
    def path(self) -> str:
        return f"/hooks/chatlayer-offloading/{self.id}?key={self.key}"


@pytest.fixture
async def desk(app: Any, api: FakeChatlayerApi) -> Offloading:
    async with app.state.store.transaction() as tx:
        created = await integrations.create(tx.conn, name="cl", kind="chatlayer-offloading",
                                            api_url=api.api_url, api_token=TOKEN)
    i = created.integration
    return Offloading(i.id, created.key, i.verify_token)


async def post(client: Any, desk: Offloading, body: Any) -> Any:
    r = await client.post(desk.path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def test_health_check_answers_ok_only_with_the_key_and_the_verify_token(
        client, desk, bot):
    ok = await client.get(f"{desk.path}&challenge.verifyToken={desk.verify_token}")
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
    for url in [
        f"{desk.path}&challenge.verifyToken=wrong",
        desk.path,
        f"/hooks/chatlayer-offloading/{desk.id}?key=wrong&challenge.verifyToken="
        f"{desk.verify_token}",
        # A Smartly integration's key and token do not open an offloading webhook.
        f"/hooks/chatlayer-offloading/{bot.id}?key={bot.key}&challenge.verifyToken="
        f"{bot.verify_token}",
    ]:
        r = await client.get(url)
        assert r.status_code == 401, (url, r.text)
        assert "status" not in r.json()
    # The token, when Chatlayer adds it to a POST, must be right too.
    wrong = await client.post(desk.path + "&challenge.verifyToken=nope",
                              json=offloading_messages("s-1", [user_says("hi")]))
    assert wrong.status_code == 401
    right = await client.post(desk.path + f"&challenge.verifyToken={desk.verify_token}",
                              json=offloading_messages("s-1", [user_says("hi")]))
    assert right.status_code == 200, right.text


async def test_messages_before_the_offload_are_the_tickets_transcript(app, client, desk, team):
    sam = await team("sam")
    before = [user_says("I need my invoice"), bot_says("Which order?"),
              {"actor": "user", "message": {"messageType": "fileUploadInputResult",
                                            "urls": ["https://files.example/inv.pdf"]}},
              {"actor": "user", "message": {"messageType": "location",
                                            "coordinates": {"lat": 50.85, "long": 4.35}}},
              {"actor": "user", "message": {"messageType": "postback", "title": "Talk to us"}}]
    assert (await post(client, desk, offloading_messages("s-1", before)))["status"] == (
        "processed")
    # The offload repeats the whole transcript: it does not come twice.
    answer = await post(client, desk, offload(
        "s-1", before, payload={"reason": "invoice", "category": "billing"}, language="fr"))
    assert answer["offloadSuccess"] is True and answer["pauseBot"] is True
    ticket_id = answer["ticket_id"]
    (ticket,) = await rows(app, Ticket)
    assert [ticket[k] for k in ("id", "state", "category", "reason", "lang", "platform")] == [
        ticket_id, "queued", "billing", "offload", "fr", "web"]
    t = (await sam.get(f"/api/tickets/{ticket_id}")).json()
    assert t["integration_kind"] == "chatlayer-offloading"
    assert t["end_user"] == "s-1"
    texts = [(m["kind"], m["text"]) for m in t["messages"]]
    assert texts == [
        ("user", "I need my invoice"), ("bot", "Which order?"),
        ("user", "[file] https://files.example/inv.pdf"), ("user", "[location] 50.85, 4.35"),
        ("user", "Talk to us"), ("system", "The bot offloaded the conversation: handover "
                                           "started")]
    assert t["messages"][2]["message"]["urls"] == ["https://files.example/inv.pdf"]
    assert t["messages"][-1]["context"]["handover_context"] == {
        "reason": "invoice", "category": "billing"}
    # Sent again (Chatlayer retries): the same ticket, nothing added.
    again = await post(client, desk, offload("s-1", before, payload={"reason": "invoice",
                                                                     "category": "billing"},
                                             language="fr"))
    assert again["offloadSuccess"] is True
    assert len(await rows(app, Ticket)) == 1
    assert len(await rows(app, Message)) == len(texts)


async def test_an_offload_with_only_a_transcript_fills_the_empty_conversation(app, client, desk):
    answer = await post(client, desk, offload("s-2", [user_says("hello"), bot_says("hi!")]))
    messages = await rows(app, Message, Message.ticket_id.is_(None))
    assert [m["text"] for m in messages] == ["hello", "hi!"]
    assert answer["ticket_id"] == (await rows(app, Ticket))[0]["id"]


async def test_replies_go_in_order_through_retries_then_handback(app, client, desk, team, api):
    alice = await team("alice")
    ticket = (await post(client, desk, offload("s-3", [user_says("help")])))["ticket_id"]
    assert (await claim(alice, ticket)).status_code == 200
    api.script = [Reply(500), Reply(503)]  # the first reply fails twice, then goes
    quick = {"text": "Which one?", "quick_replies": [
        {"content_type": "text", "title": "A", "payload": "A"}]}
    for body in ({"text": "one"}, {"message": quick}, {"text": "three"}):
        r = await alice.post(f"/api/tickets/{ticket}/messages", json=body)
        assert r.status_code == 201, r.text
    r = await alice.post(f"/api/tickets/{ticket}/handback", json={"closing_message": "bye"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved"
    settled = await wait_settled(app, 5)
    assert [d["state"] for d in settled] == ["delivered"] * 5, [
        (d["state"], d["last_error"]) for d in settled]
    path = "/v1/bots/bot-1/conversations/s-3/actions"
    assert api.actions() == [
        (path, {"sendMessages": [{"textMessageTemplate": {"textMessages": [{"text": "one"}]}}]}),
        (path, {"sendMessages": [{"quickReplyTemplate": {
            "textMessages": [{"text": "Which one?"}],
            "quickReplies": [{"title": "A", "payload": "A"}]}}]}),
        (path, {"sendMessages": [{"textMessageTemplate": {"textMessages": [{"text": "three"}]}}]}),
        (path, {"sendMessages": [{"textMessageTemplate": {"textMessages": [{"text": "bye"}]}}]}),
        (path, {"pauseBot": False}),
    ]
    assert len(api.received) == 7  # two failed attempts first
    assert {r.headers["authorization"] for r in api.received} == {f"Bearer {TOKEN}"}
    first_keys = {r.headers["idempotency-key"] for r in api.received[:3]}
    assert len(first_keys) == 1  # retries of one reply carry one key
    t = (await alice.get(f"/api/tickets/{ticket}")).json()
    handback = [m for m in t["messages"] if (m["context"] or {}).get("event") == "handback"]
    assert len(handback) == 1 and handback[0]["delivery"]["state"] == "delivered"


async def test_resolve_hands_back_with_the_integrations_own_action(app, client, desk, team,
                                                                  api):
    alice, admin = await team("alice", "root")
    custom = {"resumeBot": {"dialogstateId": "welcome"}}
    r = await admin.patch(f"/api/integrations/{desk.id}", json={"handback_action": custom})
    assert r.status_code == 200, r.text
    assert r.json()["handback_action"] == custom and "api_token" not in r.json()
    app.state.integrations.forget(desk.id)
    ticket = (await post(client, desk, offload("s-4")))["ticket_id"]
    assert (await claim(alice, ticket)).status_code == 200
    assert (await alice.post(f"/api/tickets/{ticket}/resolve", json={})).status_code == 200
    await wait_settled(app, 1)
    assert api.actions() == [("/v1/bots/bot-1/conversations/s-4/actions", custom)]


async def test_a_smartly_ticket_cannot_be_handed_back(app, client, bot, team):
    alice = await team("alice")
    r = await client.post(bot.smartly_path, json=builders.turn("u-9", "human", need_help=True))
    ticket = r.json()["ticket_id"]
    assert (await claim(alice, ticket)).status_code == 200
    r = await alice.post(f"/api/tickets/{ticket}/handback", json={})
    assert r.status_code == 409 and "Chatlayer Offloading" in r.json()["message"]
    assert (await alice.get(f"/api/tickets/{ticket}")).json()["state"] == "assigned"


async def test_bad_calls_get_clear_answers_and_store_nothing(app, client, desk, bot):
    cases = [
        (b"{not json", 400, None),
        (offloading_messages("", [user_says("x")]), 422, "sessionId"),
        ({**offloading_messages("s", [user_says("x")]), "messages": "nope"}, 422, "messages"),
        (offloading_messages("s", [{"actor": "agent", "message": {}}]), 422,
         "messages.0.actor"),
        ({"event": "offload", "sessionId": "s"}, 422, "botId"),
        ({"sessionId": "s"}, 422, "event"),
    ]
    for body, status, field in cases:
        r = await (client.post(desk.path, content=body) if isinstance(body, bytes)
                   else client.post(desk.path, json=body))
        assert r.status_code == status, (body, r.text)
        if field is not None:
            assert field in [f["field"] for f in r.json()["fields"]], r.json()
    big = offloading_messages("s", [user_says("x" * 2_000_000)])
    assert (await client.post(desk.path, json=big)).status_code == 413
    # The wrong door: Smartly events to an offloading integration, and the reverse.
    smartly = await client.post(f"/hooks/smartly/{desk.id}?key={desk.key}",
                                json=builders.turn("u", "hi"))
    assert smartly.status_code == 401
    other = await client.post(f"/hooks/chatlayer-offloading/{bot.id}?key={bot.key}",
                              json=offloading_messages("s", [user_says("x")]))
    assert other.status_code == 401
    assert await rows(app, InboundEvent) == []
    assert await rows(app, Message) == []
    # One integration, one bot: another bot's events are refused, naming botId.
    await post(client, desk, offloading_messages("s", [user_says("x")], bot="bot-1"))
    r = await client.post(desk.path, json=offloading_messages("s", [user_says("y")],
                                                              bot="bot-2"))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "botId"
    # An event it does not act on is acknowledged (200, as Chatlayer expects) and kept.
    r = await client.post(desk.path, json={"event": "typing", "sessionId": "s"})
    assert (r.status_code, r.json()["status"]) == (200, "ignored")


async def test_admins_create_offloading_integrations_over_the_api(app, client, team, api):
    admin = await team("root")
    r = await admin.post("/api/integrations", json={
        "kind": "chatlayer-offloading", "name": "Chatlayer bot", "api_url": api.api_url,
        "api_token": "secret-token", "verify_token": "vt-123"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["kind"] == "chatlayer-offloading" and out["api_token_set"] is True
    assert out["offloading_webhook_url"].endswith(
        f"/hooks/chatlayer-offloading/{out['id']}?key={out['key']}")
    assert out["smartly_webhook_url"] is None and out["chatlayer_webhook_url"] is None
    assert "secret-token" not in r.text
    listed = (await admin.get("/api/integrations")).text
    assert "secret-token" not in listed and out["key"] not in listed
    health = await client.get(out["offloading_webhook_url"].split("testserver")[-1]
                              + "&challenge.verifyToken=vt-123")
    assert health.status_code == 200
    missing = await admin.post("/api/integrations", json={
        "kind": "chatlayer-offloading", "name": "x", "api_url": api.api_url})
    assert missing.status_code == 422
    assert missing.json()["fields"][0]["field"] == "api_token"
    smartly = await admin.post("/api/integrations", json={"name": "x"})
    assert smartly.status_code == 422
    assert smartly.json()["fields"][0]["field"] == "channel_url"


async def test_an_api_url_to_an_internal_address_is_refused(app, client, team):
    """Saved through the API: 422 naming api_url. Already saved (say before the rules):
    the delivery fails for good at connect time, with no retry."""
    admin, alice = await team("root", "alice")
    r = await admin.post("/api/integrations", json={
        "kind": "chatlayer-offloading", "name": "x", "api_url": "http://10.1.2.3",
        "api_token": "t"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "api_url", r.text
    async with app.state.store.transaction() as tx:
        created = await integrations.create(tx.conn, name="old", kind="chatlayer-offloading",
                                            api_url="http://10.1.2.3:9", api_token=TOKEN)
    desk = Offloading(created.integration.id, created.key, created.integration.verify_token)
    ticket = (await post(client, desk, offload("s-5")))["ticket_id"]
    assert (await claim(alice, ticket)).status_code == 200
    assert (await alice.post(f"/api/tickets/{ticket}/messages",
                             json={"text": "hi"})).status_code == 201
    (delivery,) = await wait_settled(app, 1)
    assert (delivery["state"], delivery["attempts"]) == ("failed", 1)
    assert "10.1.2.3" in delivery["last_error"] and "private" in delivery["last_error"]
