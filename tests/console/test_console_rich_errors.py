"""Rich replies refused or lost (issue 14): the server's 422 names a field and the
composer shows it beside that input, sending nothing; "Try again" after a lost answer
sends the same message with the same Idempotency-Key, so it reaches the end user once."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Route, expect

from tests.console.test_console_rich import P, claimed_ticket, fill, open_composer

pytestmark = pytest.mark.browser


def test_refused_rich_replies_show_the_error_at_the_field(consoles, live, channel):
    console, _, _ = claimed_ticket(consoles, live, channel)
    page = console.page
    open_composer(page, "buttons")
    fill(page, {f"{P}-text": "Our help pages", f"{P}-buttons-0-title": "Help",
                f"{P}-buttons-0-url": "javascript:alert(1)"})
    url = page.locator(f"#rich-{P}-buttons-0-url")
    url_error = page.locator(f"#rich-{P}-buttons-0-url-error")

    with page.expect_response("**/api/tickets/*/messages") as refused:
        page.click("#rich-send")
    assert refused.value.status == 422
    expect(url_error).to_have_text("must be an absolute http(s) URL")
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(url).to_be_focused()
    expect(page.locator("#dlg-rich")).to_be_visible()
    # the preview never made a link of it
    expect(page.locator("#rich-preview a")).to_have_count(0)

    url.fill("ftp://example.com/help")  # a changed message: judged again, with a key of its own
    expect(url_error).to_be_hidden()
    with page.expect_response("**/api/tickets/*/messages") as refused_again:
        page.keyboard.press("Control+Enter")
    assert refused_again.value.status == 422
    expect(url_error).to_have_text("must be an absolute http(s) URL")

    # a phone number that is not one, at the payload
    url.fill("https://example.com/help")
    page.get_by_role("button", name="Add button").click()
    fill(page, {f"{P}-buttons-1-type": "phone_number"})
    fill(page, {f"{P}-buttons-1-title": "Call us", f"{P}-buttons-1-payload": "call me"})
    page.click("#rich-send")
    expect(page.locator(f"#rich-{P}-buttons-1-payload-error")).to_contain_text("phone number")

    # a missing title
    fill(page, {f"{P}-buttons-1-payload": "+32 2 123 45 67", f"{P}-buttons-0-title": " "})
    page.click("#rich-send")
    expect(page.locator(f"#rich-{P}-buttons-0-title-error")).to_have_text("must not be empty")
    fill(page, {f"{P}-buttons-0-title": "Help"})

    # too many buttons: the composer stops at three; a fourth slipped in is named at the list
    page.get_by_role("button", name="Add button").click()
    fill(page, {f"{P}-buttons-2-type": "postback"})
    fill(page, {f"{P}-buttons-2-title": "More", f"{P}-buttons-2-payload": "MORE"})
    expect(page.get_by_role("button", name="Add button")).to_be_disabled()

    def one_more(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        buttons = body["message"]["attachment"]["payload"]["buttons"]
        buttons.append(dict(buttons[-1]))
        route.continue_(post_data=json.dumps(body))

    page.route("**/api/tickets/*/messages", one_more)
    page.click("#rich-send")
    group_error = page.locator(f"#rich-{P}-buttons-error")
    expect(group_error).to_have_text("must hold 1 to 3 items, not 4")
    page.unroute("**/api/tickets/*/messages")
    assert channel.delivered == []

    # fixed: sent once, as composed
    page.click("#rich-send")
    expect(page.locator("#dlg-rich")).to_be_hidden()
    body = channel.wait_delivered(1)[0].body
    assert body["message"]["attachment"]["payload"]["buttons"] == [
        {"type": "web_url", "title": "Help", "url": "https://example.com/help"},
        {"type": "phone_number", "title": "Call us", "payload": "+32 2 123 45 67"},
        {"type": "postback", "title": "More", "payload": "MORE"}]
    expect(page.locator("#transcript .msg-agent .bot-button")).to_have_count(3)


def test_try_again_after_a_lost_answer_sends_a_rich_reply_once(consoles, live, channel):
    console, _, _ = claimed_ticket(consoles, live, channel)
    page = console.page
    open_composer(page, "image")
    fill(page, {f"{P}-url": f"{live.url}/favicon.svg"})
    keys: list[str] = []

    def lose_the_answer(route: Route) -> None:
        """The server gets the request and answers; the browser never sees it."""
        keys.append(route.request.headers.get("idempotency-key", ""))
        assert route.fetch().status == 201
        route.abort("internetdisconnected")

    page.route("**/api/tickets/*/messages", lose_the_answer)
    page.click("#rich-send")
    expect(page.locator("#rich-error")).to_contain_text("Not sent")
    expect(page.locator("#rich-send")).to_have_text("Try again")
    page.unroute("**/api/tickets/*/messages")
    channel.wait_delivered(1)

    with page.expect_response("**/api/tickets/*/messages") as answered:
        page.click("#rich-send")
    assert answered.value.status == 201
    assert answered.value.headers.get("idempotent-replayed") == "true"
    assert answered.value.request.headers["idempotency-key"] == keys[0] != ""
    expect(page.locator("#dlg-rich")).to_be_hidden()
    expect(page.locator("#transcript .msg-agent .media-image")).to_have_count(1)
    time.sleep(0.5)  # nothing else on its way to the channel
    assert len(channel.delivered) == 1
