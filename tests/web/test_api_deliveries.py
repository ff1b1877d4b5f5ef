"""The admin's deliveries, readable: recipient, ticket, an excerpt, the error only where
there is one (GET /api/integrations/{id}/deliveries, `outbox.recent`)."""

from __future__ import annotations

import pytest

from connector.domain import outbox
from tests.fakes import Reply
from tests.helpers import wait_settled
from tests.web.test_api_admin import admin  # noqa: F401  (the fixture)
from tests.web.test_api_tickets import claim, escalate, team  # noqa: F401

pytestmark = pytest.mark.anyio


async def test_each_delivery_says_to_whom_what_for_which_ticket(
        app, client, bot, channel, team, admin):  # noqa: F811
    alice = await team("alice")
    channel.script = [Reply(500), Reply(200), Reply(400)]
    first = await escalate(client, bot, "u-1")
    second = await escalate(client, bot, "u-2")
    for ticket in (first, second):
        assert (await claim(alice, ticket)).status_code == 200
    long = "word " * 40
    r = await alice.post(f"/api/tickets/{first}/messages", json={"text": long})
    assert r.status_code == 201
    await wait_settled(app, 1)  # 500, then 200 on the retry
    r = await alice.post(f"/api/tickets/{second}/messages", json={"text": "refused\nhere"})
    assert r.status_code == 201
    await wait_settled(app, 2)

    r = await admin.get(f"/api/integrations/{bot.id}/deliveries")
    assert r.status_code == 200, r.text
    refused, delivered = r.json()["deliveries"]  # newest first
    assert (delivered["recipient"], delivered["ticket_id"]) == ("u-1", first)
    assert (refused["recipient"], refused["ticket_id"]) == ("u-2", second)
    assert delivered["excerpt"] == ("word " * 24).strip() + "\u2026"
    assert len(delivered["excerpt"]) <= outbox.EXCERPT
    assert refused["excerpt"] == "refused here"
    # The error only where there is one: not on the delivery that succeeded on retry.
    assert (delivered["state"], delivered["attempts"], delivered["last_error"]) == (
        "delivered", 2, None)
    assert (refused["state"], refused["last_status"]) == ("failed", 400)
    assert refused["last_error"]


@pytest.mark.parametrize(("message", "shown"), [
    ({"text": "  hello\n\tthere  "}, "hello there"),
    ({"text": "x" * 200}, "x" * 119 + "\u2026"),
    ({"attachment": {"type": "image", "payload": {"url": "https://e.example/a.png"}}},
     "[image]"),
    ({"attachment": {"type": "template", "payload": {
        "template_type": "generic", "elements": [{"title": "a"}, {"title": "b"}]}}},
     "[carousel of 2]"),
    ({"attachment": {"type": "template", "payload": {
        "template_type": "button", "text": "Pick one", "buttons": []}}},
     "[buttons] Pick one"),
    ({"text": "Yes or no?", "quick_replies": [{"title": "Yes"}]}, "Yes or no?"),
    ({}, ""),
    (None, ""),
])
def test_the_excerpt_of_each_message_shape(message, shown):
    assert outbox.excerpt(message) == shown
