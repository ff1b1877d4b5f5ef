"""Admins in the console: an integration disabled, then deleted once its name is typed;
the audit tab lists what they did, newest first, narrowed by action, as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import people, register_bot

pytestmark = pytest.mark.browser


def test_admin_disables_and_deletes_an_integration_then_reads_the_audit(consoles, live,
                                                                        channel):
    people(live, "root", role="admin")
    bot = register_bot(live, channel.url, name="Shop <b>bot</b>")
    console = consoles().sign_in("root")
    page = console.page
    page.click("#admin-tab-integrations")
    card = page.locator(f"article.integration[data-integration-id='{bot.id}']")
    card.locator(f"#int-toggle-{bot.id}").click()
    expect(card.locator(f"#int-disabled-{bot.id}")).to_have_text("Disabled")
    expect(card.locator(f"#int-toggle-{bot.id}")).to_have_text("Enable")

    card.locator("summary", has_text="Delete…").click()
    delete = card.locator(f"#int-delete-{bot.id}")
    expect(delete).to_be_disabled()
    card.locator(f"#int-delete-name-{bot.id}").fill("Shop bot")  # not its name
    expect(delete).to_be_disabled()
    card.locator(f"#int-delete-name-{bot.id}").fill("Shop <b>bot</b>")
    expect(delete).to_be_enabled()
    delete.click()
    expect(page.locator("article.integration")).to_have_count(0)

    page.click("#admin-tab-audit")
    rows = page.locator("#audit-list tbody tr")
    expect(rows.first).to_have_attribute("data-action", "integration.deleted")
    expect(rows.first).to_contain_text("root (admin)")
    expect(rows.first).to_contain_text('name: "Shop <b>bot</b>"')  # as text, never markup
    page.fill("#audit-action", "integration.disabled")
    page.click("#audit-apply")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("disabled: false → true")
    page.fill("#audit-action", "auth")
    page.click("#audit-apply")
    expect(rows.first).to_have_attribute("data-action", "auth.sign_in")
    console.screenshot("admin-audit")
