"""Admins manage event webhooks in the console: create one (its signing secret shown
once, with a copy button), send a test that shows in the delivery log as delivered,
rotate the secret, disable and delete."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import people
from tests.fakes import FakeChannel

pytestmark = pytest.mark.browser


def test_admin_creates_a_webhook_and_sends_a_test(consoles, live):
    receiver = FakeChannel().start()
    try:
        people(live, "root", role="admin")
        console = consoles().sign_in("root")
        page = console.page
        page.click("#admin-tab-webhooks")
        page.fill("#wh-url", receiver.url)
        page.fill("#wh-description", "CRM <b>sync</b>")
        page.check("#wh-new-message-created")
        page.click("#wh-create")
        card = page.locator("article.webhook")
        expect(card).to_have_count(1)
        secret = card.locator(".secret-panel input")
        expect(secret).to_have_value(re.compile(r"^whsec_[A-Za-z0-9+/=]+$"))
        shown = secret.input_value()
        card.get_by_role("button", name="Copy signing secret").click()
        expect(card.locator(".secret-panel .copy-button")).to_have_text(re.compile("Copied|Select"))
        expect(card).to_contain_text("message.created, ticket.resolved")
        expect(card).to_contain_text("CRM <b>sync</b>")  # as text, never markup
        console.screenshot("admin-webhooks")

        # Shown once: hidden, then never again, even after a reload.
        card.get_by_role("button", name="I have copied it — hide").click()
        expect(card.locator(".secret-panel")).to_have_count(0)
        page.reload()
        page.click("#admin-tab-webhooks")
        expect(page.locator("article.webhook")).to_have_count(1)
        assert shown not in page.content()

        # A test goes through the outbox and shows in the log as delivered.
        card = page.locator("article.webhook")
        webhook_id = card.get_attribute("data-webhook-id")
        card.locator(f"#wh-test-{webhook_id}").click()
        log = card.locator(f"#wh-deliveries-{webhook_id}")
        expect(log.locator("tr[data-state='delivered']")).to_have_count(1)
        expect(log).to_contain_text("webhook.test")
        (got,) = receiver.wait_delivered(1)
        assert got.body["type"] == "webhook.test"

        # Rotating shows a new secret once; disabling greys out the test.
        card.locator(f"#wh-rotate-{webhook_id}").click()
        expect(card.locator(".secret-panel input")).to_have_value(re.compile("^whsec_"))
        assert card.locator(".secret-panel input").input_value() != shown
        card.locator(f"#wh-toggle-{webhook_id}").click()
        expect(card.locator(f"#wh-test-{webhook_id}")).to_be_disabled()
        expect(card.locator(".card-head .badge")).to_have_text("disabled")

        # Delete asks first.
        card.locator(f"#wh-delete-{webhook_id}").click()
        card.locator(f"#wh-delete-yes-{webhook_id}").click()
        expect(page.locator("article.webhook")).to_have_count(0)
        expect(page.locator("#webhooks")).to_contain_text("No event webhook yet")
    finally:
        receiver.stop()
