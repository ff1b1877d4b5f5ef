"""Console layout under hostile lengths: long words wrap or are cut, never widen the page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests import builders
from tests.browser import Console, people, register_bot, webhook

pytestmark = pytest.mark.browser

WORD = "Supercalifragilistic" * 500  # a 10,000-character word
INTENT = "I" * 4000
STATE = "S" * 4000
END_USER = "u" * 500  # the longest end-user id the webhook takes
CATEGORY = "C" * 200  # the longest handover category the webhook takes
AGENT = "a" * 100  # the longest username
BOT_NAME = "B" * 200  # the longest integration name
BUTTON = "T" * 3000

#: Elements that may scroll sideways on purpose (the carousel of bot cards always; the
#: supervisor's and admin's table hosts only on a narrow screen).
SCROLLERS = ".carousel"
NARROW_SCROLLERS = ".carousel, .sup .card-body, .deliveries-host"

#: Everything wider than the viewport, or out of it on the right, that the user can see,
#: and every element scrolling sideways that should not.
OVERFLOWS = """(scrollers) => {
  const W = window.innerWidth;
  const bad = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.classList.length ? '.' + [...el.classList].join('.') : '');
  const page = document.documentElement.scrollWidth;
  if (page > W) bad.push('page: ' + page);
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    const style = getComputedStyle(el);
    if (['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1 &&
        !el.matches('input, textarea, select, ' + scrollers)) {
      bad.push(name(el) + ' scrolls sideways: ' + el.scrollWidth + ' > ' + el.clientWidth);
    }
    // what is clipped by an ellipsis or inside a sideways scroller is not seen as overflow
    let clipped = false;
    for (let a = el.parentElement; a && !clipped; a = a.parentElement) {
      const s = getComputedStyle(a);
      clipped = s.textOverflow === 'ellipsis' || a.matches(scrollers);
    }
    if (!clipped && (r.right > W + 1 || r.width > W + 1)) {
      bad.push(name(el) + ' from ' + Math.round(r.left) + ' to ' + Math.round(r.right));
    }
  }
  return bad.slice(0, 30);
}"""


#: The top bar's items that overlap or wrap onto a second line (a long username squeezing them).
TOPBAR_CLASHES = """() => {
  const items = [...document.querySelectorAll('.topbar > *, .topbar-right > *')]
    .filter((el) => !el.classList.contains('topbar-right') && el.getClientRects().length &&
                    getComputedStyle(el).position !== 'absolute');
  const bad = [];
  let right = 0;
  for (const el of items) {
    const r = el.getBoundingClientRect();
    if (r.left < right - 1) bad.push((el.id || el.className) + ' overlaps the item before it');
    if (r.height > 40) bad.push((el.id || el.className) + ' wraps: ' + r.height + ' px high');
    right = r.right;
  }
  return bad;
}"""


def overflows(page: Page, scrollers: str = SCROLLERS) -> list[str]:
    return page.evaluate(OVERFLOWS, scrollers) + page.evaluate(TOPBAR_CLASHES)


def inside_viewport(page: Page, selector: str) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    height = page.viewport_size["height"] if page.viewport_size else 0
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (selector, box, width)
    assert box["y"] >= 0 and box["y"] + box["height"] <= height + 1, (selector, box, height)


def assert_layout(console: Console, scrollers: str = SCROLLERS) -> None:
    page = console.page
    bad = overflows(page, scrollers)
    assert not bad, "\n".join(bad)
    for selector in ("#transcript", "#composer", "#composer-text", "#send-button",
                     ".ticket-header", "#ticket-list"):
        inside_viewport(page, selector)


def has_title(locator: Locator, text: str) -> None:
    """`locator`'s title is `text` (what an ellipsis cut stays at hand)."""
    expect(locator).to_have_count(1)
    got = locator.get_attribute("title") or ""
    assert got == text, f"title {got[:60]!r} ({len(got)} chars), not {text[:60]!r} ({len(text)})"


def reply(console: Console, text: str) -> None:
    page = console.page
    expect(page.locator("#composer")).to_be_visible()
    page.locator("#composer-text").fill(text)
    page.locator("#send-button").click()
    expect(page.locator("#transcript .msg-agent .text").filter(has_text=text[:40]).last) \
        .to_have_text(text)
    expect(page.locator("#composer-text")).to_have_value("")


def long_bot_messages() -> list[dict[str, Any]]:
    """Chatlayer messages of the bot: text, quick replies, a carousel, buttons, a list, a video."""
    link = "https://example.com/" + "x" * 3000
    return [
        {"text": WORD, "quick_replies": [{"content_type": "text", "title": BUTTON, "payload": "Q"}],
         "attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
             {"title": WORD, "subtitle": WORD, "buttons": [
                 {"type": "web_url", "title": BUTTON, "url": link},
                 {"type": "postback", "title": BUTTON, "payload": "P"}]},
             {"title": "Second card", "subtitle": "fine"}]}}},
        {"attachment": {"type": "template", "payload": {
            "template_type": "button", "text": WORD, "buttons": [
                {"type": "web_url", "title": BUTTON, "url": "javascript:void(0)"},
                {"type": "phone_number", "title": BUTTON, "payload": "+33" + "1" * 2000}]}}},
        {"attachment": {"type": "template", "payload": {
            "template_type": "list", "elements": [{"title": WORD, "subtitle": WORD}],
            "buttons": [{"type": "postback", "title": BUTTON, "payload": "L"}]}}},
        {"attachment": {"type": "video", "payload": {"url": "https://example.com/" + "v" * 3000}}},
    ]


def test_long_words_never_widen_the_console(consoles, live, channel):
    bot = register_bot(live, channel.url, name=BOT_NAME)
    people(live, AGENT)
    people(live, "root", role="admin")
    ticket_id = webhook(live, bot.smartly_path, builders.turn(
        END_USER, WORD, answer=WORD, need_help=True, intent=INTENT, state_name=STATE,
        handover_category_name=CATEGORY, platform="p" * 100, lang="l" * 50))["ticket_id"]
    for message in long_bot_messages():
        webhook(live, bot.chatlayer_path, builders.chatlayer(END_USER, bot.verify_token, message))

    console = consoles().sign_in(AGENT)
    page = console.page
    item = console.ticket_item(ticket_id)
    has_title(item.locator(".ticket-user"), END_USER)
    item.click()
    expect(page.locator("#transcript .msg-user .text")).to_have_text(WORD)
    expect(page.locator("#transcript .ctx-intent b")).to_have_text(INTENT)
    expect(page.locator("#transcript .rich-carousel .card")).to_have_count(2)
    page.click("#claim-button")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    expect(page.locator("#transcript .msg-system .system-text").last) \
        .to_have_text(f"{AGENT} joined")
    assert_layout(console)

    # what is cut keeps its whole text at hand
    has_title(page.locator(".ticket-header h1"), END_USER)
    has_title(page.locator(".ticket-header .badge-category"), CATEGORY)
    has_title(page.locator("#transcript .ctx-intent"), f"Intent understood by the bot: {INTENT}")
    has_title(page.locator("#transcript .msg-user .ctx-state"), f"Bot state: {STATE}")
    has_title(page.locator("#transcript .quick-replies .chip-text"), BUTTON)
    page.locator("#transcript .msg-user .turn-details summary").click()
    expect(page.locator("#transcript .msg-user .ctx-list dd").first).to_be_visible()
    assert_layout(console)
    if page.locator(".jump").is_visible():  # the composer shown by the claim left us above
        page.locator(".jump").click()        # the end: "New messages" (not what is shown here)
    page.locator("#transcript .msg-user .msg-context").scroll_into_view_if_needed()
    console.screenshot("long-words")

    reply(console, "Bonjour " + "x" * 3000)
    page.locator("#tab-note").click()
    page.locator("#composer-text").fill("note " + "n" * 3000)
    page.locator("#composer-text").press("Enter")
    expect(page.locator("#transcript .msg-note .text")).to_have_text("note " + "n" * 3000)
    page.locator("#tab-reply").click()
    assert channel.wait_delivered(1)[0].body["message"]["text"].startswith("Bonjour xxx")
    assert_layout(console)

    # a narrow window: still no sideways page, the composer in view and usable
    page.set_viewport_size({"width": 800, "height": 700})
    assert_layout(console)
    reply(console, "Au revoir " + "y" * 3000)
    assert_layout(console)

    # the supervisor's and the admin's pages: long names are cut, with their full text
    admin = consoles().sign_in("root")
    a = admin.page
    a.goto("/#/supervisor")
    has_title(a.locator("#sup-assigned .row-link"), END_USER)
    has_title(a.locator(f"#sup-agents li[data-username='{AGENT}'] .agent-name"), AGENT)
    has_title(a.locator("#sup-assigned .assignee .cut"), AGENT)
    bad = overflows(a)
    assert not bad, "\n".join(bad)
    a.goto("/#/admin/integrations")
    card = a.locator("article.integration")
    has_title(card.locator("h3"), BOT_NAME)
    card.locator(".deliveries-box summary").click()
    expect(card.locator("table.deliveries tbody tr")).to_have_count(2)
    bad = overflows(a)
    assert not bad, "\n".join(bad)
    a.goto("/#/admin/users")
    has_title(a.locator(f"#users-table tr[data-username='{AGENT}'] .mono"), AGENT)
    bad = overflows(a)
    assert not bad, "\n".join(bad)
    a.set_viewport_size({"width": 800, "height": 700})
    for route, shown in (("/#/admin/users", f"#users-table tr[data-username='{AGENT}']"),
                         ("/#/admin/integrations", "table.deliveries tbody tr >> nth=1"),
                         ("/#/supervisor", "#sup-assigned .row-link")):
        a.goto(route)
        expect(a.locator(shown)).to_be_visible()
        bad = overflows(a, NARROW_SCROLLERS)
        assert not bad, route + "\n" + "\n".join(bad)

    # the supervisor reads the conversation and opens the transfer dialog
    admin.open_ticket(ticket_id)
    expect(a.locator(".banner")).to_contain_text(f"Read-only: {AGENT} is handling")
    a.locator("#transfer-button").click()
    has_title(a.locator(f"#dlg-transfer .choice-name[title='{AGENT}']"), AGENT)
    expect(a.locator("#transfer-sub")).to_contain_text(END_USER)
    assert_layout(admin, NARROW_SCROLLERS)
