"""Satisfaction surveys in the console: the agent ticks "Send satisfaction survey" in the
resolve dialog, the fake channel gets the closing message then the rating prompt, and
the end user's rating and comment (Smartly webhooks) appear live in the resolved
ticket's header; the reports table shows the figures."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook

pytestmark = pytest.mark.browser


def test_resolve_with_survey_and_the_score_in_the_header(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    people(live, "sam", role="supervisor")
    alice = staff("alice")
    tid = webhook(live, bot.smartly_path, builders.turn("csat-user", "help", need_help=True))[
        "ticket_id"]
    alice.post(f"/api/tickets/{tid}/claim")

    console = consoles().sign_in("alice")
    page = console.page
    console.open_ticket(tid)
    page.click("#resolve-button")
    expect(page.locator("#resolve-survey-row")).to_be_visible()
    expect(page.locator("#resolve-survey")).not_to_be_checked()
    page.fill("#resolve-message", "Glad I could help!")
    page.check("#resolve-survey")
    page.click("#resolve-submit")
    expect(page.locator("#dlg-resolve")).to_be_hidden()

    got = channel.wait_delivered(2)
    assert [r.body["message"].get("text") for r in got] == [
        "Glad I could help!", "Comment évaluez-vous cette conversation ?"]  # lang fr-fr
    assert [q["payload"] for q in got[1].body["message"]["quick_replies"]] == [
        f"CSAT_{n}" for n in range(1, 6)]
    expect(page.locator("#csat")).to_have_text("Survey sent · no answer yet")

    # The end user taps "4 ★", then writes a comment: the header follows live.
    webhook(live, bot.smartly_path, builders.turn("csat-user", "4 ★", answer=None,
                                                  payload="CSAT_4"))
    expect(page.locator("#csat .csat-score")).to_have_text("4/5")
    expect(page.locator("#csat .csat-stars")).to_have_text("★★★★☆")
    webhook(live, bot.smartly_path, builders.turn("csat-user", "<b>Very</b> quick", answer=None))
    expect(page.locator("#csat .csat-comment")).to_have_text("<b>Very</b> quick")
    expect(page.locator("#csat b")).to_have_count(0)
    console.screenshot("csat-in-header")

    # A waiting ticket closed unanswered is offered no survey.
    queued = webhook(live, bot.smartly_path, builders.turn("other", "help", need_help=True))[
        "ticket_id"]
    boss = consoles().sign_in("sam")
    boss.open_ticket(queued)
    boss.page.click("#resolve-button")
    expect(boss.page.locator("#resolve-survey-row")).to_be_hidden()
    boss.page.click("#dlg-resolve [data-close]")

    # The supervisor's reports: the satisfaction columns.
    boss.page.click("#nav-reports")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    row = boss.page.locator(f"#report-table tbody tr[data-key='{today}']")
    expect(row).to_contain_text("4.00 ★")
    expect(row).to_contain_text("0 · 0 · 0 · 1 · 0")
    expect(row).to_contain_text("1 of 1 (100%)")
