"""No two people answering unawares, in two browser contexts: who else has a conversation
open is shown, and a colleague's reply that arrives while someone is writing is pointed
out before their draft goes.

One agent answers a conversation at a time (the assignee), so the collision is at a
hand-over: a supervisor writes an answer to a conversation an agent still holds, the
agent answers meanwhile, the supervisor takes over and sends."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook

pytestmark = pytest.mark.browser


def test_a_reply_by_someone_else_while_writing_is_pointed_out_before_sending(
        consoles, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    people(live, "sam", role="supervisor")
    ticket_id = webhook(live, bot.smartly_path, builders.escalation("u-7"))["ticket_id"]

    alice = consoles().sign_in("alice")
    alice.ticket_item(ticket_id).click()
    alice.page.click("#claim-button")
    expect(alice.page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")

    sam = consoles().sign_in("sam")
    sam.page.evaluate(f"location.hash = '#/ticket/{ticket_id}'")  # from the supervisor view
    expect(sam.page.locator("#takeover-button")).to_be_visible()
    # each sees that the other has the conversation open; leaving it is seen too
    expect(alice.page.locator("#viewers")).to_have_text("Also here: sam")
    expect(sam.page.locator("#viewers")).to_have_text("Also here: alice")
    sam.page.evaluate("location.hash = '#/queue'")
    expect(alice.page.locator("#viewers")).to_be_hidden()
    sam.page.evaluate(f"location.hash = '#/ticket/{ticket_id}'")
    expect(alice.page.locator("#viewers")).to_have_text("Also here: sam")
    sam.page.fill("#composer-text", "I am taking this one, sorry for the wait")  # writing...

    alice.page.fill("#composer-text", "Your parcel left this morning")
    alice.page.press("#composer-text", "Enter")
    expect(sam.message("Your parcel left this morning")).to_be_visible()

    # sam takes over and sends what he wrote: he is told first, and nothing goes
    sam.page.click("#takeover-button")
    expect(sam.page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    sam.page.press("#composer-text", "Enter")
    warning = sam.page.locator("#compose-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("alice replied while you were writing")
    expect(sam.page.locator("#composer-text")).to_have_value(
        "I am taking this one, sorry for the wait")
    # sending again is his informed choice
    sam.page.press("#composer-text", "Enter")
    expect(warning).to_be_hidden()
    texts = [r.body["message"]["text"] for r in channel.wait_delivered(2)]
    assert texts == ["Your parcel left this morning", "I am taking this one, sorry for the wait"]
