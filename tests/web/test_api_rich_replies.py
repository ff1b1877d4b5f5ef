"""Rich replies through the real app, on SQLite and PostgreSQL: each Chatlayer message
type is accepted, kept in the transcript and delivered unchanged in the channel's
body; each broken one is refused 422 naming the field, and nothing is stored or sent."""

from __future__ import annotations

from typing import Any

import pytest

from connector.storage.models import Delivery, Message
from tests.conftest import on_each_dialect
from tests.domain.test_rich import CALL, WEB, buttons, carousel, media, quick_replies
from tests.helpers import rows, wait_settled
from tests.web.test_idempotency import agents, keyed, open_ticket  # noqa: F401  (fixture)

pytestmark = pytest.mark.anyio


settings = on_each_dialect()


RICH = [quick_replies(3), buttons(WEB, CALL), media("image"), media("video"), carousel(3)]


async def test_every_rich_type_is_delivered_unchanged_and_kept(app, client, bot, channel,
                                                               agents):  # noqa: F811
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    sent = []
    for message in RICH:
        answer = await alice.post(f"/api/tickets/{ticket}/messages", json={"message": message})
        assert answer.status_code == 201, answer.text
        assert answer.json()["message"] == message
        sent.append(answer.json())
    await wait_settled(app, len(RICH))
    # In order, each exactly as composed, in Chatlayer's bot-response body.
    assert [r.body["message"] for r in channel.delivered] == RICH
    assert all(r.body["recipient"] == {"id": "u-1"} for r in channel.delivered)
    transcript = (await alice.get(f"/api/tickets/{ticket}")).json()["messages"]
    agent = [m for m in transcript if m["kind"] == "agent"]
    assert [m["message"] for m in agent] == RICH
    assert [m["delivery"]["state"] for m in agent] == ["delivered"] * len(RICH)
    assert agent[1]["text"] == "Pick one\n[Site | Call us]"
    # Its words are searchable like any reply.
    found = (await alice.get("/api/search", params={"q": "Call"})).json()["results"]
    assert [r["message_id"] for r in found] == [sent[1]["id"]]


@pytest.mark.parametrize(("body", "field"), [
    ({"message": buttons({**WEB, "url": "javascript:alert(1)"})},
     "message.attachment.payload.buttons.0.url"),
    ({"message": buttons(WEB, WEB, WEB, WEB)}, "message.attachment.payload.buttons"),
    ({"message": carousel(11)}, "message.attachment.payload.elements"),
    ({"message": {"text": "x", "quick_replies": [{"payload": "p"}]}},
     "message.quick_replies.0.title"),
    ({"message": {"text": "x"}, "text": "y"}, "text"),
    ({}, "text"),
    ({"message": "hello"}, "message"),
])
async def test_a_broken_message_is_refused_naming_the_field(app, client, bot, channel,
                                                            agents, body, field):  # noqa: F811
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    answer = await alice.post(f"/api/tickets/{ticket}/messages", json=body,
                              headers=keyed("k-broken"))
    assert answer.status_code == 422, answer.text
    out: dict[str, Any] = answer.json()
    assert out["error"] == "invalid"
    assert field in [f["field"] for f in out["fields"]], out
    assert await rows(app, Message, Message.kind == "agent") == []
    assert await rows(app, Delivery) == []
    # The same key with a good body is a new request: the refusal was not recorded.
    good = await alice.post(f"/api/tickets/{ticket}/messages", json={"message": media()},
                            headers=keyed("k-broken"))
    assert good.status_code == 201, good.text


async def test_notes_stay_text(app, client, bot, channel,
                                                   agents):  # noqa: F811
    alice, _ = agents
    ticket = await open_ticket(client, bot, alice)
    note = await alice.post(f"/api/tickets/{ticket}/notes", json={"message": media()})
    assert note.status_code == 422
    assert {f["field"] for f in note.json()["fields"]} == {"text", "message"}
