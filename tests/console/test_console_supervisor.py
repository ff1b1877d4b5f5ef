"""The supervisor's live dashboard over a few hours of real history."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from connector.storage.models import Ticket
from tests import builders
from tests.browser import people, register_bot, webhook
from tests.helpers import execute

pytestmark = pytest.mark.browser

# minutes ago opened, minutes waited, minutes handled (None: still open), agent
HISTORY = [
    (230, 2, 9, "alice"), (214, 6, 12, "bob"), (190, 3, 7, "alice"), (170, 9, 15, "bob"),
    (150, 4, 6, "alice"), (128, 1, 10, "bob"), (105, 7, 8, "alice"), (80, 3, 11, "bob"),
    (55, 5, 9, "alice"), (35, 4, None, "alice"), (22, 2, None, "bob"), (16, 6, None, "alice"),
]
WAITING = [(9, "billing"), (4, None)]  # minutes ago, category


def backdate(live, ticket_id, opened_ago, waited=None, handled=None):
    now = dt.datetime.now(dt.UTC)
    opened = now - dt.timedelta(minutes=opened_ago)
    values = {"opened_at": opened}
    if waited is not None:
        values["claimed_at"] = values["first_response_at"] = opened + dt.timedelta(minutes=waited)
    if handled is not None:
        values["resolved_at"] = values["claimed_at"] + dt.timedelta(minutes=handled)
    t = Ticket.__table__
    live.run(execute(live.app, sa.update(t).where(t.c.id == ticket_id).values(**values)))


def test_supervisor_dashboard_over_hours_of_history(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob", "carol")
    people(live, "sam", role="supervisor")
    agents = {name: staff(name) for name in ("alice", "bob")}
    for n, (ago, waited, handled, agent) in enumerate(HISTORY):
        tid = webhook(live, bot.smartly_path, builders.escalation(
            f"user-{n}", lang=["fr-fr", "en-gb", "nl-be"][n % 3],
            plateform=["webchat", "whatsapp"][n % 2]))["ticket_id"]
        agents[agent].post(f"/api/tickets/{tid}/claim")
        agents[agent].post(f"/api/tickets/{tid}/messages", {"text": "Hello!"})
        if handled is not None:
            agents[agent].post(f"/api/tickets/{tid}/resolve", {})
        backdate(live, tid, ago, waited, handled)
    waiting = []
    for n, (ago, category) in enumerate(WAITING):
        tid = webhook(live, bot.smartly_path, builders.turn(
            f"waiting-{n}", "help", need_help=True, handover_category_name=category or "",
            lang="fr-fr", platform="messenger"))["ticket_id"]
        backdate(live, tid, ago)
        waiting.append(tid)
    channel.wait_delivered(len(HISTORY))

    console = consoles().sign_in("sam")
    page = console.page
    over = page.locator("#sup-queue tr.over")
    expect(over).to_have_count(2)
    expect(page.locator("#stat-over .stat-value")).to_have_text("2")
    expect(page.locator("#stat-waiting .stat-value")).to_have_text("2")
    expect(page.locator("#stat-oldest")).to_have_class(re.compile(r"\bover\b"))
    # tests of other things run with a capacity of 1000
    load = "#sup-agents li[data-username='{}'] .agent-load"
    expect(page.locator(load.format("alice"))).to_have_text("2 / 1000")
    expect(page.locator(load.format("bob"))).to_have_text("1 / 1000")
    expect(page.locator("#sup-agents li[data-username='alice']")).to_have_class(
        re.compile(r"\bonline\b"))
    expect(page.locator("#sup-agents li[data-username='carol']")).to_have_class(
        re.compile(r"\boffline\b"))
    chart = page.locator("#sup-chart svg")
    expect(chart).to_have_attribute("aria-label", re.compile(r"Now 2 waiting"))
    peak = chart.locator(".series-waiting").get_attribute("d")
    assert len(peak) > 200  # a real shape, not a flat line
    expect(chart.locator(".series-mean circle")).to_have_count(len(HISTORY))
    page.locator("#sup-stats").scroll_into_view_if_needed()
    console.screenshot("supervisor")

    # live: a new escalation shows in the table and the chart at once
    fresh = webhook(live, bot.smartly_path, builders.escalation("fresh-user"))["ticket_id"]
    expect(page.locator(f"#sup-queue tr[data-ticket-id='{fresh}']")).not_to_have_class(
        re.compile(r"\bover\b"))
    expect(chart).to_have_attribute("aria-label", re.compile(r"Now 3 waiting"))
    # assign the oldest to carol; she sees it as hers when she signs in
    page.select_option(f"#assign-{waiting[0]}", "carol")
    page.click(f"#assign-go-{waiting[0]}")
    expect(page.locator(f"#sup-assigned tr[data-ticket-id='{waiting[0]}'] .assignee")) \
        .to_have_text("carol")
    expect(page.locator("#stat-waiting .stat-value")).to_have_text("2")
    carol = consoles().sign_in("carol")
    expect(carol.page.locator("section[aria-labelledby=list-mine]")).to_contain_text("waiting-0")
