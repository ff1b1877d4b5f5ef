"""Rich replies composed in the console (issue 14): each Chatlayer message type built in
the Rich… dialog reaches the fake channel exactly as composed, and the transcript shows
it as the end user sees it, inert."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests import builders
from tests.browser import Console, people, register_bot, webhook
from tests.conftest import Bot, LiveServer
from tests.fakes import FakeChannel

pytestmark = pytest.mark.browser

P = "message-attachment-payload"


def claimed_ticket(consoles: Any, live: LiveServer, channel: FakeChannel,
                   user: str = "u-1") -> tuple[Console, Bot, int]:
    """alice, signed in, with the conversation of `user` claimed and open."""
    bot = register_bot(live, channel.url)
    people(live, "alice")
    console = consoles().sign_in("alice")
    ticket_id = webhook(live, bot.smartly_path, builders.escalation(user))["ticket_id"]
    console.open_ticket(ticket_id)
    console.page.click("#claim-button")
    expect(console.page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    return console, bot, ticket_id


def open_composer(page: Page, kind: str) -> None:
    page.click("#rich-button")
    expect(page.locator("#dlg-rich")).to_be_visible()
    expect(page.locator("#rich-kind")).to_be_focused()
    page.select_option("#rich-kind", kind)


def fill(page: Page, fields: dict[str, str]) -> None:
    """Each input by its label's field id (`rich-` + the server's path, dashes for dots)."""
    for field, value in fields.items():
        if field.endswith("-type"):
            page.select_option(f"#rich-{field}", value)
        else:
            page.fill(f"#rich-{field}", value)


def send_and_deliver(console: Console, bot: Bot, channel: FakeChannel, count: int,
                     expected: dict[str, Any], click: bool = True) -> Any:
    """Send the dialog; the channel's `count`th body carries exactly `expected`."""
    page = console.page
    if click:
        page.click("#rich-send")
    expect(page.locator("#dlg-rich")).to_be_hidden()
    body = channel.wait_delivered(count)[count - 1].body
    assert body == {"recipient": {"id": "u-1"}, "verifyToken": bot.verify_token,
                    "message": expected}
    reply = page.locator("#transcript .msg-agent").nth(count - 1)
    expect(reply.locator(".delivery")).to_have_attribute("data-state", "delivered")
    return reply


def test_each_rich_type_composed_in_the_console_reaches_the_channel_as_composed(
        consoles, live, channel):
    console, bot, _ = claimed_ticket(consoles, live, channel)
    page = console.page
    icon = f"{live.url}/favicon.svg"  # an image the browser can load (same origin)

    # Quick replies: two, the second with an image
    open_composer(page, "quick_replies")
    page.get_by_role("button", name="Add quick reply").click()
    expect(page.locator("#rich-message-quick_replies-1-title")).to_be_focused()
    q = "message-quick_replies"
    fill(page, {"message-text": "How was your delivery?",
                f"{q}-0-title": "Great", f"{q}-0-payload": "GOOD",
                f"{q}-1-title": "Not great", f"{q}-1-payload": "BAD", f"{q}-1-image_url": icon})
    expect(page.locator("#rich-preview .quick-replies .chip")).to_have_text(["Great", "Not great"])
    reply = send_and_deliver(console, bot, channel, 1, {
        "text": "How was your delivery?", "quick_replies": [
            {"content_type": "text", "title": "Great", "payload": "GOOD"},
            {"content_type": "text", "title": "Not great", "payload": "BAD", "image_url": icon}]})
    expect(reply.locator(".text")).to_have_text("How was your delivery?")
    expect(reply.locator(".quick-replies .chip")).to_have_text(["Great", "Not great"])
    expect(reply.locator(".quick-replies .chip-image")).to_have_attribute("src", icon)

    # Buttons: one of each type
    open_composer(page, "buttons")
    add = page.get_by_role("button", name="Add button")
    add.click()
    add.click()
    expect(add).to_be_disabled()  # three at most
    fill(page, {f"{P}-text": "Anything else?",
                f"{P}-buttons-0-title": "Track", f"{P}-buttons-0-url": "https://example.com/t/1042",
                f"{P}-buttons-1-type": "postback"})
    fill(page, {f"{P}-buttons-1-title": "Call me back", f"{P}-buttons-1-payload": "CALLBACK",
                f"{P}-buttons-2-type": "phone_number"})
    fill(page, {f"{P}-buttons-2-title": "Call us", f"{P}-buttons-2-payload": "+32 2 123 45 67"})
    expect(page.locator("#rich-preview .bot-button")).to_have_count(3)
    reply = send_and_deliver(console, bot, channel, 2, {"attachment": {
        "type": "template", "payload": {"template_type": "button", "text": "Anything else?",
                                        "buttons": [
            {"type": "web_url", "title": "Track", "url": "https://example.com/t/1042"},
            {"type": "postback", "title": "Call me back", "payload": "CALLBACK"},
            {"type": "phone_number", "title": "Call us", "payload": "+32 2 123 45 67"}]}}})
    expect(reply.locator(".rich-buttons .text")).to_have_text("Anything else?")
    link = reply.locator("a.bot-link")
    expect(link).to_have_attribute("href", "https://example.com/t/1042")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(reply.locator(".bot-button.inert")).to_have_count(2)
    expect(reply.locator(".bot-button.inert").last).to_contain_text("+32 2 123 45 67")

    # An image by keyboard alone (labelled inputs), then a video, by URL
    page.focus("#composer-text")
    page.keyboard.press("Tab")
    expect(page.locator("#rich-button")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Kind")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Kind")).to_have_value("image")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Image URL")).to_be_focused()
    page.keyboard.type(icon)
    page.keyboard.press("Control+Enter")
    image = {"attachment": {"type": "image", "payload": {"url": icon}}}
    reply = send_and_deliver(console, bot, channel, 3, image, click=False)
    expect(reply.locator("img.media-image")).to_have_attribute("src", icon)
    open_composer(page, "video")
    fill(page, {f"{P}-url": "https://example.com/clip.mp4"})
    reply = send_and_deliver(console, bot, channel, 4, {"attachment": {
        "type": "video", "payload": {"url": "https://example.com/clip.mp4"}}})
    expect(reply.locator(".rich-media a")).to_have_attribute("href", "https://example.com/clip.mp4")

    # A carousel: two cards, the first with everything and a button, the second bare
    open_composer(page, "carousel")
    page.get_by_role("button", name="Add card").click()
    expect(page.locator(f"#rich-{P}-elements-1-title")).to_be_focused()
    page.locator("[data-add='message.attachment.payload.elements.0.buttons']").click()
    fill(page, {f"{P}-elements-0-title": "Order 1042",
                f"{P}-elements-0-subtitle": "Running shoes · shipped",
                f"{P}-elements-0-image_url": icon,
                f"{P}-elements-0-item_url": "https://example.com/o/1042",
                f"{P}-elements-0-buttons-0-title": "Track",
                f"{P}-elements-0-buttons-0-url": "https://example.com/t/1042",
                f"{P}-elements-1-title": "Order 1057"})
    expect(page.locator("#rich-preview .carousel .card")).to_have_count(2)
    console.screenshot("rich-composer")
    reply = send_and_deliver(console, bot, channel, 5, {"attachment": {
        "type": "template", "payload": {"template_type": "generic", "elements": [
            {"title": "Order 1042", "subtitle": "Running shoes · shipped", "image_url": icon,
             "item_url": "https://example.com/o/1042", "buttons": [
                 {"type": "web_url", "title": "Track", "url": "https://example.com/t/1042"}]},
            {"title": "Order 1057"}]}}})
    cards = reply.locator(".carousel .card")
    expect(cards).to_have_count(2)
    expect(cards.locator(".card-title")).to_have_text(["Order 1042", "Order 1057"])
    expect(cards.first.locator(".card-image")).to_have_attribute("src", icon)
    console.screenshot("rich-replies-in-transcript")

    # Inert: nothing in a rich reply is a button, and clicking its parts sends nothing
    expect(page.locator("#transcript .msg-agent .rich-message button")).to_have_count(0)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.locator("#transcript .msg-agent .quick-replies .chip").first.click()
    page.locator("#transcript .msg-agent .bot-button.inert").first.click()
    page.locator("#transcript .msg-agent .card-title").first.click()
    expect(page.locator("#transcript .msg-agent")).to_have_count(5)
    assert posts == []
    assert len(channel.delivered) == 5
