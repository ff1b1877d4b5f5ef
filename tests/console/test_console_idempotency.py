"""A reply whose answer is lost, then "Try again": sent once (the Idempotency-Key)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Route, expect

from tests import builders
from tests.browser import people, register_bot, webhook

pytestmark = pytest.mark.browser


def test_try_again_after_a_lost_answer_sends_nothing_twice(consoles, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    console = consoles()
    console.sign_in("alice")
    page = console.page
    ticket_id = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    console.open_ticket(ticket_id)
    page.click("#claim-button")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")

    keys: list[str] = []

    def lose_the_answer(route: Route) -> None:
        """The server gets the request and answers; the browser never sees it."""
        keys.append(route.request.headers.get("idempotency-key", ""))
        answer = route.fetch()
        assert answer.status == 201
        route.abort("internetdisconnected")

    page.route("**/api/tickets/*/messages", lose_the_answer)
    box = page.locator("#composer-text")
    box.fill("Only once, please")
    box.press("Enter")
    failed = page.locator("#transcript .msg-agent", has=page.get_by_role(
        "button", name="Try again"))
    expect(failed).to_have_count(1)
    page.unroute("**/api/tickets/*/messages")
    channel.wait_delivered(1)

    with page.expect_response("**/api/tickets/*/messages") as answered:
        failed.get_by_role("button", name="Try again").click()
    replay = answered.value
    assert replay.status == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.request.headers["idempotency-key"] == keys[0] != ""

    expect(page.locator("#transcript .msg-agent", has_text="Only once, please")).to_have_count(1)
    expect(page.get_by_role("button", name="Try again")).to_have_count(0)
    time.sleep(0.5)  # nothing else on its way to the channel
    assert [r.body["message"]["text"] for r in channel.delivered] == ["Only once, please"]

    # A newly composed message has a key of its own.
    with page.expect_response("**/api/tickets/*/messages") as second:
        box.fill("Only once, please")
        box.press("Enter")
    assert second.value.status == 201
    assert second.value.request.headers["idempotency-key"] != keys[0]
    channel.wait_delivered(2)
