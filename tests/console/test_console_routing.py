"""Routing in the console: my status in the header, assignments announced, a re-queue
away from me shown, and the supervisor's live view of agents, queue groups and
first-response breaches. Real consoles in Chromium against a live server; tickets
are opened through the real webhook and routed by the real router."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from connector.storage.models import Integration, Ticket
from tests import builders
from tests.browser import people, register_bot, webhook
from tests.conftest import PASSWORD, free_port, fresh_database, make_settings
from tests.helpers import execute

pytestmark = pytest.mark.browser

_t = Ticket.__table__
_integ = Integration.__table__

# Notifications are allowed and recorded; the console is "in another window".
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
def live_settings(request, tmp_path, migrated_db):
    """The live server's settings; a test parametrizes this fixture to change some."""
    port = free_port()
    fresh_database(migrated_db, tmp_path)
    return make_settings(tmp_path, port=port, public_url=f"http://127.0.0.1:{port}",
                         **getattr(request, "param", {}))


class Api:
    """A user signed in to the agent API (PATCH included), not a browser."""

    def __init__(self, live, username):
        self.client = httpx.Client(base_url=live.url, timeout=10)
        r = self.client.post("/api/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.headers = {"X-CSRF-Token": r.json()["csrf_token"]}

    def send(self, method, path, body=None):
        r = self.client.request(method, path, json=body, headers=self.headers)
        assert r.status_code < 300, r.text
        return r.json()


@pytest.fixture
def api(live):
    made = []

    def make(username):
        made.append(Api(live, username))
        return made[-1]

    yield make
    for a in made:
        a.client.close()


def status_of(console):
    return console.page.locator("#my-status")


def test_status_is_set_in_the_header_and_follows_another_console(consoles, live, api):
    people(live, "alice")
    one = consoles().sign_in("alice")
    two = consoles().sign_in("alice")
    for c in (one, two):
        expect(status_of(c)).to_have_attribute("data-status", "offline")
        expect(c.page.get_by_label("My status")).to_have_value("offline")

    # set in one console: shown there, stored, and followed by the other one
    one.page.get_by_label("My status").select_option("online")
    expect(status_of(one)).to_have_attribute("data-status", "online")
    expect(status_of(two)).to_have_attribute("data-status", "online")
    expect(two.page.get_by_label("My status")).to_have_value("online")
    expect(two.page.locator("#toasts")).to_contain_text("Your status is now Online.")
    alice = api("alice")
    assert alice.send("GET", "/api/me")["status"] == "online"

    # by keyboard in the other console; and a change made elsewhere (the API) too
    two.page.get_by_label("My status").focus()
    two.page.keyboard.press("ArrowDown")
    expect(status_of(two)).to_have_attribute("data-status", "away")
    expect(status_of(one)).to_have_attribute("data-status", "away")
    assert alice.send("GET", "/api/me")["status"] == "away"
    alice.send("PATCH", "/api/me", {"status": "offline"})
    for c in (one, two):
        expect(status_of(c)).to_have_attribute("data-status", "offline")
    expect(one.page.locator("#toasts")).to_contain_text("Your status is now Offline")

    # a fresh console reads it from GET /api/me
    alice.send("PATCH", "/api/me", {"status": "away"})
    three = consoles().sign_in("alice")
    expect(status_of(three)).to_have_attribute("data-status", "away")


def test_an_assignment_by_routing_is_announced(consoles, live, channel, api):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    console = consoles()
    console.context.add_init_script(SPY)
    console.page.reload()
    console.sign_in("alice")
    page = console.page
    html = page.locator("html")
    page.get_by_label("My status").select_option("online")
    expect(status_of(console)).to_have_attribute("data-status", "online")

    # nothing open: the conversation routed to her is announced and opened
    first = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    expect(html).to_have_attribute("data-last-alert", "assigned")
    assert ("A conversation was assigned to you", "End user u-1") in [
        tuple(n) for n in page.evaluate("window.__notifications")]
    expect(page.locator("#toasts")).to_contain_text("New conversation assigned to you: u-1.")
    expect(page).to_have_url(re.compile(rf"#/ticket/{first}$"))
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    mine = page.locator("section[aria-labelledby=list-mine]")
    expect(mine.locator(f".ticket-item[data-ticket-id='{first}']")).to_be_visible()
    expect(html).to_have_attribute("data-assigned-alerts", "1")

    # one open already: the next one is announced and highlighted in the list
    second = webhook(live, bot.smartly_path, builders.escalation("u-2"))["ticket_id"]
    expect(html).to_have_attribute("data-assigned-alerts", "2")
    expect(html).to_have_attribute("data-last-alert", "assigned")
    item = console.ticket_item(second)
    expect(item).to_have_attribute("data-just-assigned", "1")
    expect(item).to_have_class(re.compile(r"\bjust-assigned\b"))
    expect(item.locator(".fresh-tag")).to_have_text("New")
    expect(page.locator(".ticket-header h1")).to_have_text("u-1")  # not taken away from u-1
    # online under routing, the handovers themselves did not chime: their assignment did
    assert html.get_attribute("data-escalation-alerts") is None
    # opened: no longer highlighted
    item.click()
    expect(page.locator(".ticket-header h1")).to_have_text("u-2")
    expect(console.ticket_item(second)).not_to_have_attribute("data-just-assigned", "1")
    # her own claim is no announcement
    page.get_by_label("My status").select_option("away")
    expect(status_of(console)).to_have_attribute("data-status", "away")
    third = webhook(live, bot.smartly_path, builders.escalation("u-3"))["ticket_id"]
    expect(html).to_have_attribute("data-escalation-alerts", "1")  # away: told it waits
    console.ticket_item(third).click()
    page.click("#claim-button")
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    expect(html).to_have_attribute("data-assigned-alerts", "2")


@pytest.mark.parametrize("live_settings", [{"requeue_after_seconds": 3}], indirect=True)
def test_a_requeue_away_from_me_is_a_notice_in_the_ticket(consoles, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    console = consoles().sign_in("alice")
    page = console.page
    page.get_by_label("My status").select_option("online")
    expect(status_of(console)).to_have_attribute("data-status", "online")
    ticket = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    expect(page.locator(".ticket-header .badge-state-assigned")).to_have_text("Yours")
    # away (so routing does not give it straight back), and silent: re-queued
    page.get_by_label("My status").select_option("away")
    notice = page.locator("#ticket-notice")
    expect(notice).to_be_visible(timeout=12000)
    expect(notice).to_contain_text("Taken back from you: No answer for 1 min: back in the queue")
    expect(page.locator(".ticket-header .badge-state-queued")).to_have_text("Waiting")
    expect(page.locator("#toasts")).to_contain_text(f"Conversation #{ticket}: Taken back from you")
    # a console opened later shows it too (from the transcript)
    later = consoles().sign_in("alice")
    later.open_ticket(ticket)
    expect(later.page.locator("#ticket-notice")).to_contain_text("Taken back from you")


def backdate(live, ticket_id, seconds):
    opened = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    live.run(execute(live.app, sa.update(_t).where(_t.c.id == ticket_id).values(
        opened_at=opened)))


@pytest.mark.parametrize("live_settings", [{"agent_capacity": 3}], indirect=True)
def test_supervisor_sees_agents_queue_groups_and_breaches(consoles, live, channel, api):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    people(live, "sam", role="supervisor")
    alice, bob = api("alice"), api("bob")
    alice.send("PATCH", "/api/me", {"status": "away"})
    opened = {}
    for user, category, lang in [("b-1", "billing", "fr-fr"), ("b-2", "billing", "en-gb"),
                                 ("n-1", "", "fr-fr"), ("r-1", "returns", "de-de")]:
        opened[user] = webhook(live, bot.smartly_path, builders.turn(
            user, "help", need_help=True, handover_category_name=category,
            lang=lang))["ticket_id"]
    for user in ("n-1", "r-1"):
        alice.send("POST", f"/api/tickets/{opened[user]}/claim")
    for n, tid in enumerate(opened.values()):
        backdate(live, tid, 60 + 10 * n)
    live.run(execute(live.app, sa.update(_integ).where(_integ.c.id == bot.id).values(
        first_response_target_seconds=5)))

    sup = consoles().sign_in("sam")
    page = sup.page
    agent = page.locator("#sup-agents li[data-username='alice']")
    expect(agent.locator(".agent-load")).to_have_text("2 / 3")
    expect(agent).to_have_attribute("data-status", "away")
    expect(agent.locator(".agent-status")).to_have_text("Away")
    expect(agent.locator(".agent-console")).to_have_text("no console")
    expect(agent.locator(".agent-oldest")).to_have_text(re.compile(r"^1:[0-5]\d$"))
    other = page.locator("#sup-agents li[data-username='bob']")
    expect(other.locator(".agent-load")).to_have_text("0 / 3")
    expect(other).to_have_attribute("data-status", "offline")
    expect(other.locator(".agent-oldest")).to_have_text("—")

    # the queue by category and language, each with its longest wait
    billing = page.locator("#sup-by-category tr[data-key='billing']")
    expect(billing.locator(".group-waiting")).to_have_text("2")
    expect(billing.locator(".counter")).to_have_text(re.compile(r"^1:[0-5]\d$"))
    expect(page.locator("#sup-by-category tbody tr")).to_have_count(1)
    expect(page.locator("#sup-by-language tr[data-key='fr-fr'] .group-waiting")).to_have_text("1")
    expect(page.locator("#sup-by-language tr[data-key='en-gb'] .group-waiting")).to_have_text("1")

    # first-response breaches: all four are past 5 s unanswered
    expect(page.locator("#stat-breaches .stat-value")).to_have_text("4")
    expect(page.locator("#stat-breaches")).to_have_class(re.compile(r"\bover\b"))
    expect(page.locator("#sup-queue tr[data-breach='1']")).to_have_count(2)
    expect(page.locator("#sup-assigned tr[data-breach='1']")).to_have_count(2)
    row = page.locator(f"#sup-assigned tr[data-ticket-id='{opened['r-1']}']")
    expect(row).to_have_class(re.compile(r"\bbreach\b"))
    expect(row.locator(".breach-flag")).to_be_visible()

    # live: an answer ends its breach; a status change and a claim show at once
    alice.send("POST", f"/api/tickets/{opened['r-1']}/messages", {"text": "Hello"})
    expect(row).not_to_have_class(re.compile(r"\bbreach\b"))
    expect(row.locator(".breach-flag")).to_be_hidden()
    expect(page.locator("#stat-breaches .stat-value")).to_have_text("3")
    bob.send("PATCH", "/api/me", {"status": "online"})
    expect(other).to_have_attribute("data-status", "online")
    bob.send("POST", f"/api/tickets/{opened['b-1']}/claim")
    expect(other.locator(".agent-load")).to_have_text("1 / 3")
    expect(billing.locator(".group-waiting")).to_have_text("1")

    # a new handover: not a breach yet, then one when its 5 s have passed
    fresh = webhook(live, bot.smartly_path, builders.escalation("fresh"))["ticket_id"]
    new_row = page.locator(f"#sup-queue tr[data-ticket-id='{fresh}']")
    expect(new_row).to_be_visible()
    assert new_row.get_attribute("data-breach") is None
    expect(new_row).to_have_attribute("data-breach", "1", timeout=10000)
    expect(page.locator("#stat-breaches .stat-value")).to_have_text("4")
