"""Bot admins in the console: integrations (URLs, key rotation, test, deliveries) and users."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook
from tests.fakes import Reply

pytestmark = pytest.mark.browser


def test_admin_creates_an_integration_whose_url_works(consoles, live, channel):
    people(live, "root", role="admin")
    console = consoles().sign_in("root")
    page = console.page
    expect(page.locator("#admin-tab-integrations")).to_have_attribute("aria-selected", "true")
    page.fill("#int-name", "Shop bot")
    page.fill("#int-channel", channel.url)
    page.fill("#int-token", "tok-123")
    page.click("#int-create")
    card = page.locator("article.integration", has_text="Shop bot")
    smartly = card.locator(".secret-panel").get_by_role("textbox", name="Smartly webhook URL")
    expect(smartly).to_have_value(re.compile(re.escape(live.url) + r"/hooks/smartly/\w+\?key=\S+"))
    url = smartly.input_value()
    integration_id = card.get_attribute("data-integration-id")
    expect(card.locator(f"#chatlayer-url-{integration_id}")).to_have_value(
        f"{live.url}/hooks/chatlayer/{integration_id}")
    expect(card.locator(f"#token-{integration_id}")).to_have_value("tok-123")
    copy = card.get_by_role("button", name="Copy Smartly webhook URL")
    copy.click()
    expect(copy).to_have_text(re.compile("Copied|Select"))
    console.screenshot("admin-integrations")

    # the URL shown works for a real webhook: the ticket appears in the console
    r = httpx.post(url, json=builders.escalation("u-shop", plateform="whatsapp"), timeout=10)
    assert r.status_code == 200, r.text
    ticket_id = r.json()["ticket_id"]
    page.click("#nav-queue")
    expect(console.ticket_item(ticket_id)).to_contain_text("u-shop")
    expect(console.ticket_item(ticket_id).locator(".badge-platform")).to_have_text("whatsapp")

    # test message straight to the channel
    page.click("#nav-admin")
    card.locator(f"#test-recipient-{integration_id}").fill("u-test")
    card.locator(f"#test-{integration_id}").click()
    expect(card.locator(f"#test-result-{integration_id}")).to_contain_text("Channel answered 200")
    sent = channel.wait_delivered(1)[0].body
    assert sent["recipient"] == {"id": "u-test"} and sent["verifyToken"] == "tok-123"
    # ... and listed with its outcome among the recent deliveries
    card.locator("summary", has_text="Recent deliveries").click()
    tests = card.locator(f"#test-sends-{integration_id}")
    expect(tests).to_contain_text("u-test")
    expect(tests.locator(".badge-delivery-delivered")).to_have_text("delivered 200")

    # rotate the key with a grace period: both URLs work, the grace is shown
    card.locator(f"#grace-{integration_id}").select_option("3600")
    card.locator(f"#rotate-{integration_id}").click()
    expect(smartly).not_to_have_value(url)
    expect(card.locator(f"#key-info-{integration_id}")).to_contain_text(
        "previous key still accepted until")
    new_url = smartly.input_value()
    for u, user in ((url, "u-old"), (new_url, "u-new")):
        r = httpx.post(u, json=builders.escalation(user), timeout=10)
        assert r.status_code == 200, r.text

    # the verify token changes (rotated on the Chatlayer side): saved, shown, used
    card.locator("summary", has_text="Edit").click()
    card.locator(f"#edit-token-{integration_id}").fill("tok-456")
    card.locator(f"#save-{integration_id}").click()
    expect(card.locator(f"#token-{integration_id}")).to_have_value("tok-456")
    body = builders.chatlayer("u-shop", "tok-456", {"text": "bot again"})
    r = httpx.post(f"{live.url}/hooks/chatlayer/{integration_id}", json=body, timeout=10)
    assert r.status_code == 200, r.text


def test_admin_sees_deliveries_and_resends_a_failed_one(consoles, staff, live, channel):
    bot = register_bot(live, channel.url, name="Support bot")
    people(live, "root", role="admin")
    people(live, "alice")
    ticket_id = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    alice = staff("alice")
    alice.post(f"/api/tickets/{ticket_id}/claim")
    channel.script = [Reply(503), Reply(400)]
    alice.post(f"/api/tickets/{ticket_id}/messages", {"text": "first try"})

    console = consoles().sign_in("root")
    page = console.page
    card = page.locator(f"article.integration[data-integration-id='{bot.id}']")
    card.locator("summary", has_text="Recent deliveries").click()
    row = card.locator("tbody tr").first
    expect(row).to_have_attribute("data-state", "failed")
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text(f"#{ticket_id}")  # the ticket, a link
    expect(cells.nth(2)).to_have_text("u-1")  # the recipient
    expect(cells.nth(3)).to_have_text("first try")  # an excerpt of the message
    expect(cells.nth(5)).to_have_text("2")  # attempts
    expect(cells.nth(6)).to_have_text("HTTP 400")  # the error, where there is one
    row.get_by_role("button", name="Resend").click()
    expect(row).to_have_attribute("data-state", "delivered")  # refreshed live
    expect(row.locator("td").nth(6)).to_have_text("")  # delivered: no error shown
    assert channel.texts() == ["first try"]
    row.get_by_role("link", name=f"#{ticket_id}").click()
    expect(page.locator(".ticket-header h1")).to_have_text("u-1")


def test_admin_manages_users(consoles, live):
    people(live, "root", role="admin")
    console = consoles().sign_in("root")
    page = console.page
    page.click("#admin-tab-users")
    page.fill("#user-name", "carol")
    page.select_option("#user-role", "supervisor")
    page.fill("#user-password", "short")
    page.click("#user-create")
    expect(page.locator("#user-form .form-error")).to_contain_text("password")
    page.fill("#user-password", "a long enough secret")
    page.uncheck("#user-must-change")  # (a password to change first: test_console_account)
    page.click("#user-create")
    row = page.locator("#users-table tr[data-username='carol']")
    expect(row.locator("select")).to_have_value("supervisor")

    # the new user can sign in; disabling them ends their session
    carol = consoles().sign_in("carol", "a long enough secret")
    expect(carol.page.locator("#nav-supervisor")).to_be_visible()
    row.get_by_role("button", name="Disable").click()
    expect(row.locator(".badge-disabled")).to_be_visible()
    expect(carol.page.locator("#signin")).to_be_visible()
    expect(carol.page.locator("#signin-note")).to_contain_text("session ended")

    row.get_by_role("button", name="Enable").click()
    expect(row.locator(".badge-active")).to_be_visible()
    row.get_by_role("button", name="Reset password").click()
    row.locator("input[type=password]").fill("another good secret")
    row.get_by_label("must change it").uncheck()
    row.get_by_role("button", name="Set password").click()
    expect(row.get_by_role("button", name="Reset password")).to_be_visible()
    carol.sign_in("carol", "another good secret")
    row.locator("select").select_option("agent")
    row.get_by_role("button", name="Save role").click()
    expect(row.locator("select")).to_have_value("agent")
    expect(page.locator("#users-table tr[data-username='root'] select")).to_be_disabled()

    # what routing gives carol: a capacity and skills; a bad value is refused, named
    # (once the role's save has re-drawn the list, which would drop what is typed)
    expect(row.get_by_role("button", name="Save role")).to_be_hidden()
    row.get_by_label("Capacity of carol").fill("2")
    row.get_by_label("Skills of carol (comma-separated)").fill("fr, Billing")
    row.get_by_role("button", name="Save", exact=True).click()
    expect(row.get_by_label("Skills of carol (comma-separated)")).to_have_value("billing, fr")
    expect(row.get_by_label("Capacity of carol")).to_have_value("2")
    row.get_by_label("Capacity of carol").fill("0")
    row.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".toast").last).to_contain_text("max_concurrent")
    console.screenshot("admin-users")
