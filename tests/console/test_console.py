"""The browser console in real Chromium: a whole handover, agent and supervisor live."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook
from tests.conftest import PASSWORD
from tests.fakes import Reply

pytestmark = pytest.mark.browser

CAROUSEL = {
    "text": "Which order is it about?",
    "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "Y"},
                      {"content_type": "text", "title": "No", "payload": "N"}],
    "attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
        {"title": "Order 1042", "subtitle": "Running shoes · shipped 12 May",
         "buttons": [{"type": "web_url", "title": "Track", "url": "https://example.com/t/1042"},
                     {"type": "postback", "title": "This one", "payload": "ORDER_1042"}]},
        {"title": "Order 1057", "subtitle": "Rain jacket · preparing",
         "buttons": [{"type": "postback", "title": "This one", "payload": "ORDER_1057"}]},
    ]}},
}


def test_whole_handover_in_the_browser(consoles, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    console = consoles()
    console.screenshot("sign-in")
    console.sign_in("alice")
    page = console.page
    expect(page.locator("#list-queue + .empty")).to_be_visible()

    webhook(live, bot.smartly_path, builders.turn(
        "u-42", "Je veux parler à un humain", answer="Un conseiller arrive", need_help=True))
    opened = webhook(live, bot.smartly_path, builders.escalation("u-42"))
    ticket_id = opened["ticket_id"]
    item = console.ticket_item(ticket_id)
    expect(item).to_be_visible()
    expect(item).to_contain_text("u-42")
    expect(item.locator(".badge-lang")).to_have_text("FR-FR")
    expect(item.locator(".badge-platform")).to_have_text("webchat")
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    expect(page.locator("html")).to_have_attribute("data-last-alert", "escalation")
    webhook(live, bot.chatlayer_path, builders.chatlayer("u-42", bot.verify_token, CAROUSEL))

    item.click()
    expect(page.locator(".marker-handover")).to_be_visible()
    expect(console.message("Je veux parler à un humain")).to_contain_text("HelpIntent")
    page.click("#claim-button")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    expect(console.ticket_item(ticket_id)).to_have_count(1)
    expect(page.locator("#list-mine")).to_contain_text("1")

    box = page.locator("#composer-text")
    box.fill("Bonjour, je suis Alice.")
    box.press("Shift+Enter")
    box.type("Comment puis-je aider ?")
    box.press("Enter")
    text = "Bonjour, je suis Alice.\nComment puis-je aider ?"
    got = channel.wait_delivered(1)
    assert got[0].body == {"recipient": {"id": "u-42"}, "verifyToken": bot.verify_token,
                           "message": {"text": text}}
    reply = page.locator("#transcript .msg-agent").last
    expect(reply).to_contain_text("Comment puis-je aider ?")
    expect(reply.locator(".delivery")).to_have_attribute("data-state", "delivered")
    expect(reply.locator(".delivery")).to_have_text("Delivered")
    expect(box).to_have_value("")
    expect(page.locator("#transcript .rich-carousel .card")).to_have_count(2)
    expect(page.locator("#transcript .quick-replies .chip")).to_have_text(["Yes", "No"])

    # more people waiting: the queue is oldest first
    later = [webhook(live, bot.smartly_path, builders.escalation("u-77", lang="en-gb",
                                                                plateform="whatsapp")),
             webhook(live, bot.smartly_path, builders.turn(
                 "u-88", "Ik wil een mens", need_help=True, lang="nl-be", platform="messenger",
                 handover_category_name="billing"))]
    queue = page.locator("section[aria-labelledby=list-queue] .ticket-item")
    expect(queue).to_have_count(2)
    assert [int(i) for i in queue.evaluate_all("els => els.map(e => e.dataset.ticketId)")] == [
        t["ticket_id"] for t in later]
    expect(page).to_have_title(re.compile(r"^\(2\) "))
    console.screenshot("agent-ticket")


def test_agent_and_supervisor_see_each_other_live(consoles, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    people(live, "sam", role="supervisor")
    agent = consoles().sign_in("alice")
    boss = consoles().sign_in("sam")
    a, s = agent.page, boss.page
    expect(s.locator("#nav-supervisor")).to_have_attribute("aria-current", "page")
    expect(s.locator("#sup-agents li[data-username='alice']")).to_have_attribute(
        "data-connected", "true")

    ticket_id = webhook(live, bot.smartly_path, builders.turn(
        "u-7", "I need a person", need_help=True, handover_category_name="billing"))["ticket_id"]
    row = s.locator(f"#sup-queue tr[data-ticket-id='{ticket_id}']")
    expect(row).to_contain_text("u-7")
    expect(row.locator(".badge-category")).to_have_text("billing")
    expect(s.locator("#stat-waiting .stat-value")).to_have_text("1")
    expect(agent.ticket_item(ticket_id)).to_be_visible()

    # the agent claims: the supervisor sees the ticket move to "with agents"
    agent.ticket_item(ticket_id).click()
    a.click("#claim-button")
    # The claim's own answer moves the focus to the reply box; the stream may tell the
    # supervisor first, so wait for it before typing (else keys land on the page).
    expect(a.locator("#composer-text")).to_be_focused()
    assigned = s.locator(f"#sup-assigned tr[data-ticket-id='{ticket_id}']")
    expect(assigned.locator(".assignee")).to_have_text("alice")
    expect(s.locator("#sup-queue")).to_have_count(0)
    expect(s.locator("#sup-agents li[data-username='alice'] .agent-load")).to_have_text("1 / 1000")

    # the supervisor opens it read-only and watches the agent type and answer
    assigned.locator("a.row-link").click()
    expect(s.locator(".banner")).to_contain_text("Read-only")
    expect(s.locator("#tab-reply")).to_be_disabled()
    a.locator("#composer-text").type("Let me check")
    expect(s.locator("#typing")).to_have_text("alice is typing…")
    a.locator("#composer-text").press("Enter")
    expect(boss.message("Let me check")).to_have_class(re.compile("msg-agent"))
    expect(boss.message("Let me check").locator(".delivery")).to_have_attribute(
        "data-state", "delivered")

    # a note from the supervisor reaches the agent live, typing shown both ways
    s.locator("#composer-text").type("Offer the refund")
    expect(a.locator("#typing")).to_have_text("sam is typing…")
    s.locator("#composer-text").press("Enter")
    expect(agent.message("Offer the refund")).to_have_class(re.compile("msg-note"))
    assert channel.texts() == ["Let me check"]  # notes never reach the end user

    # the supervisor re-assigns the ticket to bob: it leaves alice's list
    s.goto("/#/supervisor")
    boss.page.select_option(f"#assign-{ticket_id}", "bob")
    s.click(f"#assign-go-{ticket_id}")
    expect(assigned.locator(".assignee")).to_have_text("bob")
    expect(agent.ticket_item(ticket_id)).to_have_count(0)
    expect(a.locator(".banner")).to_contain_text("bob is handling this conversation")
    expect(a.locator("#composer")).to_be_hidden()

    # the supervisor takes the conversation over and answers the end user
    s.goto(f"/#/ticket/{ticket_id}")
    s.click("#takeover-button")
    expect(s.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    expect(s.locator("#tab-reply")).to_be_enabled()
    s.locator("#tab-reply").click()
    s.locator("#composer-text").fill("Sam here, I will sort it out")
    s.locator("#composer-text").press("Enter")
    expect(boss.message("Sam here").locator(".delivery")).to_have_text("Delivered")
    assert channel.texts() == ["Let me check", "Sam here, I will sort it out"]


def test_delivery_state_is_live_and_failed_replies_can_be_resent(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    ticket_id = webhook(live, bot.smartly_path, builders.escalation("u-9"))["ticket_id"]
    staff("alice").post(f"/api/tickets/{ticket_id}/claim")
    console = consoles().sign_in("alice")
    console.open_ticket(ticket_id)
    page = console.page
    channel.script = [Reply(503, headers={"Retry-After": "2"}), Reply(400)]
    page.locator("#composer-text").fill("Are you still there?")
    page.locator("#composer-text").press("Enter")
    state = console.message("Are you still there?").locator(".delivery")
    expect(state).to_have_text("Retrying (attempt 1 failed: HTTP 503)")
    expect(state).to_have_attribute("data-state", "failed")
    expect(state).to_contain_text("Failed: HTTP 400")
    state.get_by_role("button", name="Resend").click()
    expect(state).to_have_attribute("data-state", "delivered")
    assert channel.texts() == ["Are you still there?"]
    assert len(channel.received) == 3


def test_keyboard_claim_reply_note_transfer_resolve_and_sign_out(consoles, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    first = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    second = webhook(live, bot.smartly_path, builders.escalation("u-2"))["ticket_id"]
    console = consoles()
    page = console.page
    kb = page.keyboard
    expect(page.locator("#signin-username")).to_be_focused()
    kb.type("alice")
    kb.press("Tab")
    kb.type(PASSWORD)
    kb.press("Enter")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")

    kb.press("j")
    expect(page).to_have_url(re.compile(rf"#/ticket/{first}$"))
    kb.press("j")
    expect(page).to_have_url(re.compile(rf"#/ticket/{second}$"))
    kb.press("k")
    expect(page).to_have_url(re.compile(rf"#/ticket/{first}$"))
    expect(page.locator(".ticket-header h1")).to_have_text("u-1")
    kb.press("c")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    expect(page.locator("#composer-text")).to_be_focused()  # a claim puts you in the reply box
    kb.press("Escape")
    expect(page.locator("#composer-text")).not_to_be_focused()
    kb.press("r")
    expect(page.locator("#composer-text")).to_be_focused()
    kb.type("Hi, I am here")
    kb.press("Enter")
    expect(console.message("Hi, I am here").locator(".delivery")).to_have_text("Delivered")
    kb.press("Escape")
    kb.press("n")
    expect(page.locator("#composer")).to_have_attribute("data-mode", "note")
    kb.type("checked the order")
    kb.press("Enter")
    expect(console.message("checked the order")).to_have_class(re.compile("msg-note"))
    kb.press("Escape")

    kb.press("t")  # transfer back to the queue
    expect(page.locator("#dlg-transfer")).to_be_visible()
    expect(page.locator("#transfer-options label", has_text="bob")).to_be_visible()
    expect(page.locator("#transfer-to-queue")).to_be_focused()
    kb.press("Space")
    kb.press("Enter")
    expect(page.locator("#dlg-transfer")).to_be_hidden()
    expect(page.locator(".banner")).to_contain_text("Waiting in the queue")
    expect(console.ticket_item(first)).to_have_attribute("data-state", "queued")

    kb.press("c")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    # The badge can come from the live stream before the claim's answer, which is what
    # puts the focus in the reply box: wait for that, or Escape could come first.
    expect(page.locator("#composer-text")).to_be_focused()
    kb.press("Escape")
    kb.press("e")  # resolve with a closing message
    expect(page.locator("#resolve-message")).to_be_focused()
    kb.type("Glad I could help. Bye!")
    kb.press("Control+Enter")
    # The stream can show the resolution before the resolve's own answer closes the
    # dialog; shortcuts are ignored while a dialog is open.
    expect(page.locator("#dlg-resolve")).to_be_hidden()
    expect(page.locator(".banner")).to_contain_text("Resolved")
    expect(console.ticket_item(first)).to_have_count(0)
    channel.wait_delivered(2)
    assert channel.texts() == ["Hi, I am here", "Glad I could help. Bye!"]

    kb.press("?")
    expect(page.locator("#dlg-help")).to_be_visible()
    expect(page.locator("#shortcut-list")).to_contain_text("claim the open conversation")
    kb.press("Escape")
    expect(page.locator("#dlg-help")).to_be_hidden()

    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#signin-note")).to_have_text("You are signed out.")
    page.reload()
    expect(page.locator("#signin")).to_be_visible()
