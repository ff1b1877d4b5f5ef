"""The reports view: a supervisor opens it from the navigation, sees the last 7 days'
figures in a table and the handovers per day in a chart, groups by agent, and
downloads the CSV of the range."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from connector.storage.models import Ticket
from tests import builders
from tests.browser import people, register_bot, webhook
from tests.helpers import execute

pytestmark = pytest.mark.browser

HOSTILE_CATEGORY = "<img src=x onerror=\"window.__xss='report'\">"


def backdate(live, ticket_id, days_ago, waited=None, handled=None):
    """Opened `days_ago` days before now (at a quarter past midnight UTC, so on that UTC
    date); taken and answered `waited` minutes later, resolved `handled` minutes after."""
    today = dt.datetime.now(dt.UTC).date()
    opened = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(0, 15), dt.UTC)
    values = {"opened_at": opened}
    if waited is not None:
        values["claimed_at"] = values["first_response_at"] = opened + dt.timedelta(
            minutes=waited)
    if handled is not None:
        values["resolved_at"] = values["claimed_at"] + dt.timedelta(minutes=handled)
    t = Ticket.__table__
    live.run(execute(live.app, sa.update(t).where(t.c.id == ticket_id).values(**values)))


def test_reports_table_chart_grouping_and_csv(consoles, staff, live, channel, tmp_path):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    people(live, "sam", role="supervisor")
    agents = {name: staff(name) for name in ("alice", "bob")}
    # (days ago, minutes waited, minutes handled, agent, category)
    plan = [(5, 2, 10, "alice", "billing"), (5, 6, 20, "bob", "billing"),
            (2, 4, 8, "alice", HOSTILE_CATEGORY), (0, None, None, None, "")]
    ids = []
    for n, (ago, waited, handled, agent, category) in enumerate(plan):
        tid = webhook(live, bot.smartly_path, builders.turn(
            f"report-user-{n}", "help", need_help=True, handover_category_name=category)
        )["ticket_id"]
        if agent:
            agents[agent].post(f"/api/tickets/{tid}/claim")
            agents[agent].post(f"/api/tickets/{tid}/messages", {"text": "Hello!"})
            agents[agent].post(f"/api/tickets/{tid}/resolve", {})
        backdate(live, tid, ago, waited, handled)
        ids.append(tid)
    channel.wait_delivered(3)

    console = consoles().sign_in("sam")
    page = console.page
    page.click("#nav-reports")
    expect(page.locator("#nav-reports")).to_have_attribute("aria-current", "page")
    today = dt.datetime.now(dt.UTC).date()
    week_ago = today - dt.timedelta(days=6)
    expect(page.locator("#report-from")).to_have_value(week_ago.isoformat())
    expect(page.locator("#report-to")).to_have_value(today.isoformat())

    # the table: one row per day of the range, then the total
    table = page.locator("#report-table")
    expect(table.locator("tbody tr")).to_have_count(7)
    day5 = table.locator(f"tbody tr[data-key='{(today - dt.timedelta(days=5)).isoformat()}']")
    expect(day5.locator("td").nth(0)).to_have_text("2")  # handovers
    expect(day5.locator("td").nth(1)).to_have_text("4:00")  # median wait of 2 and 6 min
    expect(table.locator("tfoot td").nth(0)).to_have_text("4")
    expect(page.locator("#report-summary")).to_contain_text("4 handovers")

    # the chart: a bar on each day with handovers, the median wait as a line
    chart = page.locator("#report-chart svg")
    expect(chart).to_have_attribute("aria-label", re.compile(r"4 in all"))
    expect(chart.locator(".series-handovers rect")).to_have_count(3)
    expect(chart.locator(".series-median-dots circle")).to_have_count(3)
    assert chart.locator(".series-median").get_attribute("d").startswith("M")
    console.screenshot("reports")

    # by agent; a category is shown as text, never as markup
    page.select_option("#report-by", "agent")
    expect(table.locator("tbody th")).to_have_text(["alice", "bob", "unassigned"])
    page.select_option("#report-by", "category")
    expect(table.locator("tbody th").filter(has_text="onerror")).to_have_text(HOSTILE_CATEGORY)
    assert page.evaluate("window.__xss") is None
    expect(chart.locator(".series-handovers rect")).to_have_count(3)  # still per day

    # the CSV of the range
    link = page.locator("#report-csv")
    expect(link).to_have_attribute("href", re.compile(
        rf"/api/reports/tickets\.csv\?from={week_ago}&to={today}$"))
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == f"tickets-{week_ago}-to-{today}.csv"
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(), newline="")))
    assert rows[0][:3] == ["id", "integration", "end_user"]
    assert [int(r[0]) for r in rows[1:]] == ids
    assert rows[3][3] == HOSTILE_CATEGORY  # starts with "<": no formula, kept as it is

    # a label narrows the table and the CSV
    agents["alice"].patch(f"/api/tickets/{ids[0]}", {"labels": ["vip"]})
    page.select_option("#report-by", "day")
    page.fill("#report-label", "VIP")
    page.press("#report-label", "Enter")
    expect(table.locator("tfoot td").nth(0)).to_have_text("1")
    expect(link).to_have_attribute("href", re.compile(r"&label=VIP$"))

    # a range the server refuses says why
    page.fill("#report-from", today.isoformat())
    page.fill("#report-to", week_ago.isoformat())
    page.click("#report-show")
    expect(page.locator("#report-error")).to_have_text(re.compile(r"to: must be on or after"))
