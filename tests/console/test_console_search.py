"""Search in the console: the box above the lists opens a dialog that finds messages whatever their
accents, marks the matched words as <mark> elements around plain text (hostile text
stays text), pages with "More results", and a result opens its ticket scrolled to the
message; an agent never sees another agent's ticket among the results."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=\"window.__xss = 'img'\"> <b>café</b> brûlé"


def test_search_opens_the_ticket_at_the_message(consoles, live, channel, staff):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    people(live, "sam", role="supervisor")
    alice, bob = staff("alice"), staff("bob")
    # alice's ticket: a long conversation, the match far up; bob's ticket: also a match
    t1 = webhook(live, bot.smartly_path, builders.turn("u-1", HOSTILE, need_help=True))["ticket_id"]
    alice.post(f"/api/tickets/{t1}/claim")
    for i in range(40):
        alice.post(f"/api/tickets/{t1}/messages", {"text": f"Réponse numéro {i}"})
    t2 = webhook(live, bot.smartly_path, builders.turn("u-2", "Mon CAFE est froid",
                                                       need_help=True))["ticket_id"]
    bob.post(f"/api/tickets/{t2}/claim")

    console = consoles()
    console.sign_in("sam")
    page = console.page
    page.goto("/#/queue")
    page.fill("#list-search-input", "cafe")
    page.press("#list-search-input", "Enter")
    expect(page.locator("#dlg-search")).to_be_visible()
    hits = page.locator("#search-results .search-hit")
    expect(hits).to_have_count(2)
    expect(hits.nth(0).locator("mark")).to_have_text(["CAFE"])
    expect(hits.nth(1).locator("mark")).to_have_text(["café"])
    expect(hits.nth(1).locator(".search-snippet")).to_contain_text("<img src=x")
    expect(hits.nth(1).locator(".search-snippet img, .search-snippet b")).to_have_count(0)
    assert page.evaluate("window.__xss") is None

    page.fill("#search-input", "numero")  # 40 replies: two pages of 20
    page.click("#search-submit")
    expect(hits).to_have_count(20)
    page.click("#search-more")
    expect(hits).to_have_count(40)
    expect(page.locator("#search-more")).to_be_hidden()

    page.fill("#search-input", "brule")
    page.click("#search-submit")
    expect(hits).to_have_count(1)
    message_id = hits.nth(0).get_attribute("data-message")
    hits.nth(0).click()
    expect(page.locator("#dlg-search")).to_be_hidden()
    assert page.url.endswith(f"#/ticket/{t1}/m/{message_id}")
    target = page.locator(f"#transcript .msg[data-id='{message_id}']")
    expect(target).to_have_class("msg msg-user search-target")
    expect(target).to_be_in_viewport()
    expect(page.locator("#transcript .msg").last).not_to_be_in_viewport()
    assert console.errors == []

    agent = consoles()
    agent.sign_in("alice")
    apage = agent.page
    apage.fill("#list-search-input", "cafe")
    apage.click("#list-search-submit")
    expect(apage.locator("#search-results .search-hit")).to_have_count(1)  # not bob's
    expect(apage.locator("#search-results .search-hit").nth(0)).to_have_attribute(
        "data-ticket", str(t1))
    assert agent.errors == []
