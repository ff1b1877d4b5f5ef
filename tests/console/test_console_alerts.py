"""A new escalation is impossible to miss: chime, desktop notification, title, reminders."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from connector.storage.migrate import upgrade
from tests import builders
from tests.browser import people, register_bot, webhook
from tests.conftest import free_port, make_settings

pytestmark = pytest.mark.browser

THRESHOLD = 3

# The agent is "in another window": notifications are allowed and recorded.
SPY = """
window.__notifications = [];
class FakeNotification {
  constructor(title, options) { window.__notifications.push([title, (options || {}).body || '']); }
  static get permission() { return 'granted'; }
  static requestPermission() { return Promise.resolve('granted'); }
  close() {}
}
window.Notification = FakeNotification;
document.hasFocus = () => false;
"""


@pytest.fixture
def live_settings(tmp_path):
    port = free_port()
    s = make_settings(tmp_path, port=port, public_url=f"http://127.0.0.1:{port}",
                      waiting_threshold_seconds=THRESHOLD)
    upgrade(s)
    return s


def notifications(page):
    return [tuple(n) for n in page.evaluate("window.__notifications")]


def test_escalations_chime_notify_count_and_remind(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    people(live, "sam", role="supervisor")
    console = consoles()
    console.context.add_init_script(SPY)
    console.page.reload()
    console.sign_in("alice")
    page = console.page
    html = page.locator("html")
    expect(page).to_have_title("Conversations · Handover console")

    first = webhook(live, bot.smartly_path, builders.escalation("u-1", lang="de-de"))["ticket_id"]
    expect(page).to_have_title("(1) Conversations · Handover console")
    expect(html).to_have_attribute("data-last-alert", "escalation")
    assert ("New conversation waiting", "End user u-1 (de-de · webchat)") in notifications(page)
    expect(html).to_have_attribute("data-chimes", re.compile(r"\d+"))
    expect(page.locator("#nav-queue .nav-count")).to_have_text("1")

    # past the threshold: highlighted, and a reminder that repeats
    expect(console.ticket_item(first)).to_have_class(re.compile(r"\bover\b"))
    expect(html).to_have_attribute("data-last-alert", "reminder")
    assert any("1 waiting longer than 3 s" in title for title, _ in notifications(page))
    alerts = int(html.get_attribute("data-alerts"))
    expect(html).to_have_attribute("data-alerts", str(alerts + 1), timeout=9000)

    # taken: the count and the reminders stop
    console.ticket_item(first).click()
    page.click("#claim-button")
    expect(page).to_have_title("Conversations · Handover console")
    expect(html).to_have_attribute("data-overdue", "0")

    # a colleague hands a conversation to alice: she is told too
    second = webhook(live, bot.smartly_path, builders.escalation("u-2"))["ticket_id"]
    expect(page).to_have_title(re.compile(r"^\(1\)"))
    staff("sam").post(f"/api/tickets/{second}/transfer", {"to": "alice"})
    expect(html).to_have_attribute("data-last-alert", "assigned")
    assert ("A conversation was assigned to you", "End user u-2") in notifications(page)
    expect(page.locator("#list-mine .count")).to_have_text("2")
