"""History and labels in the console: the Resolved list with its filters (an agent sees
only their own), a resolved conversation opened with its whole transcript, the end
user's earlier conversations beside an open ticket, and labels edited in the ticket
header (chips, suggestions, removal), followed live by a supervisor's console."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook

pytestmark = pytest.mark.browser


def handled(live, bot, agent, end_user, said, channel=None):
    tid = webhook(live, bot.smartly_path, builders.turn(end_user, said, need_help=True))[
        "ticket_id"]
    agent.post(f"/api/tickets/{tid}/claim")
    agent.post(f"/api/tickets/{tid}/messages", {"text": f"re: {said}"})
    agent.post(f"/api/tickets/{tid}/resolve", {})
    return tid


def label(who, tid, labels):
    r = who.client.patch(f"/api/tickets/{tid}", json={"labels": labels},
                         headers={"X-CSRF-Token": who.csrf})
    assert r.status_code == 200, r.text


def test_resolved_list_filters_and_earlier_conversations(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    alice, bob = staff("alice"), staff("bob")
    first = handled(live, bot, alice, "history-user", "where is my parcel")
    theirs = handled(live, bot, bob, "someone-else", "bob's customer")
    second = handled(live, bot, alice, "history-user", "I want a refund")
    label(alice, second, ["refund"])
    channel.wait_delivered(3)

    console = consoles().sign_in("alice")
    page = console.page
    page.click("#resolved-link")  # at the end of the conversation lists
    expect(page.locator("#view-resolved")).to_be_visible()
    expect(page).to_have_url(f"{live.url}/#/resolved")
    rows = page.locator("#resolved-table tbody tr")
    # An agent's list: their own, the latest closed first; never a colleague's.
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-ticket-id", str(second))
    expect(rows.nth(1)).to_have_attribute("data-ticket-id", str(first))
    expect(page.locator(f"#resolved-table tr[data-ticket-id='{theirs}']")).to_have_count(0)
    expect(rows.nth(0).locator(".label-chip")).to_have_text("refund")
    expect(page.locator("#resolved-summary")).to_contain_text("2 resolved · page 1 of 1")
    expect(page.locator("#resolved-next")).to_be_disabled()

    # Filter by label, then by a date range with nothing in it, then clear.
    page.fill("#resolved-label", "refund")
    page.click("#resolved-show")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-ticket-id", str(second))
    page.fill("#resolved-label", "")
    page.fill("#resolved-from", "2001-01-01")
    page.fill("#resolved-to", "2001-01-31")
    page.click("#resolved-show")
    expect(page.locator("#resolved-empty")).to_be_visible()
    page.fill("#resolved-from", "")
    page.fill("#resolved-to", "")
    page.fill("#resolved-end-user", "history-user")
    page.click("#resolved-show")
    expect(rows).to_have_count(2)

    # A row opens the conversation with its whole transcript, the bot's turns included.
    rows.nth(1).locator("a.resolved-open").click()
    expect(page.locator(".ticket-header h1")).to_have_text("history-user")
    # the end user's turn (through the bot) and the reply that quotes it
    expect(console.message("where is my parcel")).to_have_count(2)
    expect(console.message("re: where is my parcel")).to_have_count(1)

    # The same end user comes back: beside the new ticket, the earlier conversations.
    now = webhook(live, bot.smartly_path, builders.turn("history-user", "again", need_help=True))[
        "ticket_id"]
    alice.post(f"/api/tickets/{now}/claim")
    console.open_ticket(now)
    earlier = page.locator("#earlier-conversations")
    expect(earlier.locator("summary")).to_have_text("Earlier conversations (2)")
    earlier.locator("summary").click()
    links = earlier.locator("a.earlier-link")
    expect(links).to_have_count(2)
    expect(links.nth(0)).to_have_attribute("data-ticket-id", str(second))
    expect(links.nth(0)).to_contain_text("refund")
    expect(links.nth(1)).to_be_visible()
    links.nth(1).click()
    expect(page).to_have_url(f"{live.url}/#/ticket/{first}")
    expect(console.message("re: where is my parcel")).to_have_count(1)
    console.screenshot("resolved-and-earlier")


def test_labels_edited_in_the_ticket_header(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    people(live, "sam", role="supervisor")
    alice = staff("alice")
    old = handled(live, bot, alice, "label-user-0", "old one")
    label(alice, old, ["refund", "vip"])
    tid = webhook(live, bot.smartly_path, builders.turn("label-user", "help", need_help=True))[
        "ticket_id"]
    alice.post(f"/api/tickets/{tid}/claim")

    mine = consoles().sign_in("alice")
    watcher = consoles().sign_in("sam")
    mine.open_ticket(tid)
    watcher.open_ticket(tid)
    page = mine.page
    chips = page.locator("#ticket-labels .label-text")
    expect(chips).to_have_count(0)

    box = page.locator("#label-input")
    box.fill("re")
    # Suggestions: labels already used, on tickets one may see.
    expect(page.locator("#label-suggestions option[value='refund']")).to_have_count(1)
    expect(page.locator("#label-suggestions option[value='vip']")).to_have_count(0)
    box.fill("  Refund ")
    box.press("Enter")
    expect(chips).to_have_text(["refund"])
    expect(page.locator("#label-input")).to_be_focused()
    page.locator("#label-input").fill("Billing <b>")
    page.locator("#label-input").press("Enter")
    expect(chips).to_have_text(["billing <b>", "refund"])
    # The supervisor's console follows live (a ticket.updated frame carrying them).
    expect(watcher.page.locator("#ticket-labels .label-text")).to_have_text(
        ["billing <b>", "refund"])
    # ... and the conversation lists show them on the ticket
    expect(mine.ticket_item(tid).locator(".badge-label")).to_have_text(["billing <b>", "refund"])
    # ... and a label narrows the lists to the tickets that have it
    page.fill("#list-label-filter", "Refund")
    expect(mine.ticket_item(tid)).to_be_visible()
    page.fill("#list-label-filter", "vip")
    expect(mine.ticket_item(tid)).to_have_count(0)
    expect(page.locator("section[aria-labelledby='list-mine'] .empty")).to_be_visible()
    page.fill("#list-label-filter", "")
    expect(mine.ticket_item(tid)).to_be_visible()
    page.click("button[aria-label='Remove label refund']")
    expect(chips).to_have_text(["billing <b>"])
    expect(watcher.page.locator("#ticket-labels .label-text")).to_have_text(["billing <b>"])
    # Too long: refused, the toast says why, nothing changes.
    page.locator("#label-input").fill("x" * 50)
    page.evaluate("document.getElementById('label-input').maxLength = 100")
    page.locator("#label-input").fill("x" * 51)
    page.locator("#label-input").press("Enter")
    expect(page.locator("#toasts")).to_contain_text("at most 50 characters")
    expect(chips).to_have_text(["billing <b>"])
    mine.screenshot("labels-in-header")


def test_a_label_being_typed_survives_a_live_update_of_the_ticket(consoles, staff, live,
                                                                  channel):
    """A live update of the open ticket rebuilds its header (here the first reply, which
    sets its first-response time): what is being typed in the label box stays, with its
    focus and its suggestions."""
    bot = register_bot(live, channel.url)
    people(live, "alice")
    alice = staff("alice")
    label(alice, handled(live, bot, alice, "typing-user-0", "old one"), ["refund"])
    tid = webhook(live, bot.smartly_path, builders.turn("typing-user", "help", need_help=True))[
        "ticket_id"]
    alice.post(f"/api/tickets/{tid}/claim")
    mine = consoles().sign_in("alice")
    mine.open_ticket(tid)
    page = mine.page
    first_reply = page.locator(".metric", has_text="First reply")
    before = first_reply.inner_text()
    box = page.locator("#label-input")
    box.click()
    box.press_sequentially("re")
    expect(page.locator("#label-suggestions option[value='refund']")).to_have_count(1)

    alice.post(f"/api/tickets/{tid}/messages", {"text": "hello from alice"})
    expect(first_reply).not_to_have_text(before)  # the header was rebuilt
    expect(box).to_have_value("re")
    expect(box).to_be_focused()
    expect(page.locator("#label-suggestions option[value='refund']")).to_have_count(1)
    box.press_sequentially("fund")
    box.press("Enter")
    expect(page.locator("#ticket-labels .label-text")).to_have_text(["refund"])
