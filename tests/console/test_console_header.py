"""The ticket header stays true: a claim made while the ticket's GET is under way is not
undone by that older answer, and the first-response time shows once the first reply
is sent, live and after a reload."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import APIResponse, Route, expect

from tests import builders
from tests.browser import Console, people, register_bot, webhook

pytestmark = pytest.mark.browser


def alice_and_a_ticket(consoles: Any, live: Any, channel: Any) -> tuple[Console, int]:
    """Agent alice signed in to a console, and the id of a Smartly handover's ticket."""
    bot = register_bot(live, channel.url)
    people(live, "alice")
    console = consoles().sign_in("alice")
    return console, webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]


def test_a_claim_during_the_tickets_get_is_not_undone_by_its_older_answer(
        consoles, live, channel):
    console, ticket_id = alice_and_a_ticket(consoles, live, channel)
    page = console.page
    expect(console.ticket_item(ticket_id)).to_be_visible()
    held: list[tuple[Route, APIResponse]] = []

    def hold(route: Route) -> None:
        """Answered by the server now (still queued); shown to the page only later."""
        held.append((route, route.fetch()))

    page.route(f"**/api/tickets/{ticket_id}", hold)
    console.open_ticket(ticket_id)
    while not held:  # the GET reaches the route handler while Playwright is dispatching
        page.wait_for_timeout(20)
    page.click("#claim-button")
    header = page.locator(".ticket-header")
    expect(header.locator(".badge-state-assigned")).to_have_text("Yours")

    route, stale = held[0]
    assert stale.json()["state"] == "queued"
    route.fulfill(response=stale)
    expect(page.locator("#transcript .marker-handover")).to_be_visible()
    expect(header.locator(".badge-state-assigned")).to_have_text("Yours")
    expect(page.locator("#claim-button")).to_have_count(0)
    expect(page.locator("#send-button")).to_be_enabled()


def test_first_reply_time_shows_once_the_first_reply_is_sent_and_after_a_reload(
        consoles, live, channel):
    console, ticket_id = alice_and_a_ticket(consoles, live, channel)
    page = console.page
    console.open_ticket(ticket_id)
    page.click("#claim-button")
    first_reply = page.locator(".ticket-header .metric").filter(has_text="First reply")
    expect(first_reply).to_have_text(re.compile(r"^First reply\s*—$"))

    page.fill("#composer-text", "Hello, I am Alice.")
    page.press("#composer-text", "Enter")
    channel.wait_delivered(1)
    expect(first_reply).to_have_text(re.compile(r"^First reply\s*\d+ s$"))

    page.reload()
    expect(page.locator("#transcript .msg-agent")).to_contain_text("Hello, I am Alice.")
    expect(first_reply).to_have_text(re.compile(r"^First reply\s*\d+ s$"))
