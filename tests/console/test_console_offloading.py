"""Chatlayer Offloading in the console (issue 15): the end user's files, location, button
presses and the start of the conversation shown as meant (links http(s) only, a map link
only for coordinates in range), what the bot handed over under the handover marker as
text, and "Hand back to the bot" through a confirm dialog, with the hand-back's delivery
shown live, a failed one re-sent; through the real app and a fake Chatlayer API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from connector.accounts import integrations
from tests import builders
from tests.browser import people, register_bot, webhook
from tests.builders import bot_says, offload, offloading_messages, user_says
from tests.conftest import LiveServer
from tests.fakes import FakeChatlayerApi, Reply

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"
PDF = "https://files.example/uploads/Invoice%20May.pdf"
MAP = "https://www.openstreetmap.org/?mlat=50.8503&mlon=4.3517#map=16/50.8503/4.3517"


def said(message: dict[str, Any]) -> dict[str, Any]:
    return {"actor": "user", "message": message, "timestamp": "2026-11-29T10:00:00.000Z"}


BEFORE = [
    said({"messageType": "intro"}),
    user_says("My invoice is wrong"),
    bot_says({"text": "Which one?", "quick_replies": [
        {"content_type": "text", "title": "May", "payload": "MAY"}]}),
    said({"messageType": "fileUploadInputResult", "urls": [PDF], "data": {"fileUrl": PDF}}),
    said({"messageType": "upload", "urls": ["javascript:alert(1)", "https://files.example/"]}),
    said({"messageType": "location", "coordinates": {"lat": 50.8503, "long": 4.3517}}),
    said({"messageType": "location", "coordinates": {"lat": 120, "long": 4.35}}),
    said({"messageType": "postback", "title": "Talk to a person", "payload": "HUMAN"}),
]
CONTEXT = {"category": "billing", "customer": {"id": 42, "tier": "gold"}, "note": HOSTILE}


@pytest.fixture
def api() -> Iterator[FakeChatlayerApi]:
    fake = FakeChatlayerApi().start()
    yield fake
    fake.stop()


def offloading_desk(live: LiveServer, api: FakeChatlayerApi) -> str:
    """A Chatlayer Offloading integration calling the fake API: its webhook path."""
    async def create() -> str:
        async with live.app.state.store.transaction() as tx:
            made = await integrations.create(tx.conn, name="cl", kind="chatlayer-offloading",
                                             api_url=api.api_url, api_token="cl-token")
        return f"/hooks/chatlayer-offloading/{made.integration.id}?key={made.key}"
    return live.run(create())


def test_offloaded_conversation_shows_what_the_end_user_sent_and_the_handover_context(
        consoles, live, api):
    path = offloading_desk(live, api)
    people(live, "alice")
    webhook(live, path, offloading_messages("s-1", BEFORE))
    ticket_id = webhook(live, path, offload("s-1", BEFORE, payload=CONTEXT))["ticket_id"]
    console = consoles().sign_in("alice")
    console.open_ticket(ticket_id)
    page = console.page
    t = page.locator("#transcript")

    marker = t.locator(".marker-handover")
    expect(marker.locator(".system-text")).to_have_text(
        "Handover started · Bot offloaded the conversation")
    box = marker.locator("details.handover-context")
    expect(box).to_have_attribute("open", "")
    expect(box.locator("summary")).to_have_text("Handover context · 3 fields")
    expect(box.locator("dt")).to_have_text(["category", "customer", "note"])
    expect(box.locator("dd")).to_have_text(["billing", '{"id":42,"tier":"gold"}', HOSTILE])
    expect(t.locator("img")).to_have_count(0)

    expect(t.locator(".user-intro")).to_have_text("Conversation started")
    files = t.locator(".msg-user .user-files")
    pdf = files.nth(0).locator("a.attachment")
    expect(pdf).to_have_count(1)  # `urls` and `data.fileUrl` name one file
    expect(pdf).to_have_text("Invoice May.pdf")
    expect(pdf).to_have_attribute("href", PDF)
    expect(pdf).to_have_attribute("target", "_blank")
    expect(pdf).to_have_attribute("rel", "noopener noreferrer")
    others = files.nth(1).locator(".attachment")
    expect(others).to_have_text(["file · link removed", "files.example"])
    expect(others.nth(1)).to_have_attribute("href", "https://files.example/")
    places = t.locator(".msg-user .user-location")
    expect(places.nth(0).locator(".coordinates")).to_have_text("50.8503, 4.3517")
    expect(places.nth(0).locator("a.map-link")).to_have_attribute("href", MAP)
    expect(places.nth(1)).to_contain_text("(coordinates not readable)")
    expect(places.nth(1).locator("a")).to_have_count(0)
    expect(t.locator(".user-postback")).to_have_text("Talk to a person · button")
    expect(t.locator(".msg-bot .quick-replies .chip")).to_have_text(["May"])
    console.screenshot("offloading-transcript")

    # A large context starts collapsed, bounded
    large = {f"field_{n:02}": "x" * 600 for n in range(40)}
    other = webhook(live, path, offload("s-9", [user_says("hi")], payload=large))["ticket_id"]
    console.open_ticket(other)
    box = page.locator("#transcript .marker-handover details.handover-context")
    expect(box.locator("summary")).to_have_text("Handover context · 40 fields")
    expect(box).not_to_have_attribute("open", "")
    box.locator("summary").click()
    expect(box.locator("dt")).to_have_count(30)
    expect(box.locator("dd").first).to_have_text("x" * 499 + "…")
    expect(box.locator(".hint")).to_have_text("and 10 more")


def test_hand_back_to_the_bot_shows_its_delivery_and_a_failed_one_is_resent(
        consoles, live, api, channel):
    path = offloading_desk(live, api)
    people(live, "alice")
    ticket_id = webhook(live, path, offload("s-2", [user_says("help")],
                                            payload={"reason": "refund"}))["ticket_id"]
    smartly = register_bot(live, channel.url)
    other = webhook(live, smartly.smartly_path, builders.escalation("u-1"))["ticket_id"]
    console = consoles().sign_in("alice")
    page = console.page

    # A Smartly conversation is not handed back (nor one still waiting)
    console.open_ticket(other)
    page.click("#claim-button")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    expect(page.locator("#handback-button")).to_have_count(0)

    console.open_ticket(ticket_id)
    expect(page.locator("#transcript .marker-handover")).to_be_visible()
    expect(page.locator("#handback-button")).to_have_count(0)
    page.click("#claim-button")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")

    # Cancel sends nothing
    page.click("#handback-button")
    dialog = page.locator("#dlg-handback")
    expect(dialog).to_be_visible()
    expect(page.locator("#handback-message")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    api.script = [Reply(200), Reply(400)]  # the closing message goes, the hand-back fails
    page.click("#handback-button")
    page.fill("#handback-message", "Thanks, the assistant takes it from here.")
    with page.expect_response(f"**/api/tickets/{ticket_id}/handback") as answer:
        page.click("#handback-submit")
    assert answer.value.status == 200
    expect(dialog).to_be_hidden()
    expect(page.locator(".ticket-header .badge-state-resolved")).to_have_text("Resolved")
    expect(page.locator("#handback-button")).to_have_count(0)
    line = page.locator("#transcript .msg-system[data-event='handback']")
    state = line.locator(".delivery")
    expect(state).to_have_attribute("data-state", "failed")
    expect(state).to_contain_text("Handed back to the bot · failed: HTTP 400")
    console.screenshot("handback-failed")

    state.get_by_role("button", name="Resend").click()
    expect(state).to_have_attribute("data-state", "delivered")
    expect(state).to_have_text("Handed back to the bot · delivered")
    actions = [body for _, body in api.actions()]
    assert actions == [
        {"sendMessages": [{"textMessageTemplate": {"textMessages": [
            {"text": "Thanks, the assistant takes it from here."}]}}]},
        {"pauseBot": False},
    ]

    # After a reload, as stored
    page.reload()
    expect(line.locator(".delivery")).to_have_text("Handed back to the bot · delivered")
    expect(page.locator(".ticket-header .badge-state-resolved")).to_have_text("Resolved")
