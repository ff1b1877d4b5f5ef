"""Canned responses in the console: `/` + shortcut in the reply box suggests and
inserts them with their placeholders filled; the dialog manages personal ones."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook

pytestmark = pytest.mark.browser


def test_slash_shortcut_inserts_the_text_with_placeholders(consoles, live, channel, staff):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    people(live, "sam", role="supervisor")
    sam = staff("sam")
    sam.post("/api/canned-responses", {"shortcut": "hello", "scope": "shared",
                                       "text": "Hello {end_user}, I am {agent}."})
    sam.post("/api/canned-responses", {"shortcut": "help", "scope": "shared",
                                       "text": "How can I help?"})
    alice = staff("alice")
    r = alice.client.patch("/api/me", json={"display_name": "Alice Martin"},
                           headers={"X-CSRF-Token": alice.csrf})
    assert r.status_code == 200, r.text

    console = consoles()
    console.sign_in("alice")
    page = console.page
    ticket_id = webhook(live, bot.smartly_path, builders.escalation("u-42"))["ticket_id"]
    console.open_ticket(ticket_id)
    page.click("#claim-button")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")

    box = page.locator("#composer-text")
    box.click()
    box.type("Hi! /he")
    listbox = page.get_by_role("listbox", name="Canned responses")
    expect(listbox).to_be_visible()
    options = listbox.get_by_role("option")
    expect(options).to_have_count(2)
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    box.type("l")  # /hel: both still
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("ArrowUp")
    expect(options.nth(0)).to_contain_text("/hello")
    box.type("l")  # /hell: hello only
    expect(options).to_have_count(1)
    box.press("Enter")  # inserts; does not send
    expect(box).to_have_value("Hi! Hello u-42, I am Alice Martin.")
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    assert channel.delivered == []

    box.type(" /help")
    expect(listbox.get_by_role("option")).to_have_count(1)
    box.press("Tab")
    expect(box).to_have_value("Hi! Hello u-42, I am Alice Martin. How can I help?")
    box.type(" /he")
    expect(listbox).to_be_visible()
    box.press("Escape")  # closes the list, stays in the box
    expect(listbox).to_be_hidden()
    expect(box).to_be_focused()
    box.press("Enter")  # the list is closed: Enter sends
    got = channel.wait_delivered(1)
    sent = "Hi! Hello u-42, I am Alice Martin. How can I help? /he"
    assert got[0].body["message"]["text"] == sent

    # Managing: an agent adds a personal one (and cannot add shared ones).
    page.click("#canned-button")
    dialog = page.locator("#dlg-canned")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".canned-item")).to_have_count(2)
    expect(dialog.get_by_role("button", name="Edit /hello")).to_have_count(0)
    expect(dialog.locator("#canned-scope option")).to_have_count(1)
    dialog.locator("#canned-shortcut").fill("Thanks")
    dialog.locator("#canned-text").fill("Thanks, {end_user}!")
    dialog.locator("#canned-save").click()
    expect(dialog.locator(".canned-item[data-shortcut='thanks']")).to_contain_text("mine")
    dialog.locator("#canned-shortcut").fill("thanks")
    dialog.locator("#canned-text").fill("again")
    dialog.locator("#canned-save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("already used")
    dialog.get_by_role("button", name="Edit /thanks").click()
    dialog.locator("#canned-text").fill("Thank you, {end_user}!")
    dialog.locator("#canned-save").click()
    expect(dialog.locator(".canned-item[data-shortcut='thanks']")).to_contain_text("Thank you")
    dialog.get_by_role("button", name="Close").click()

    box.type("/tha")
    box.press("Enter")
    expect(box).to_have_value("Thank you, u-42!")
    page.click("#canned-button")
    dialog.get_by_role("button", name="Delete /thanks").click()
    expect(dialog.locator(".canned-item")).to_have_count(2)
    console.screenshot("canned-responses")
