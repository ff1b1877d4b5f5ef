"""Admin → Integrations by kind (issue 15): a Chatlayer Offloading integration made through
the form (errors at the field), its Offloading URL and signing secret shown once, the URL
answering Chatlayer's health check, its card (API token never shown, the bot bound by the
first event), the handback action's JSON editor, key and signing secret rotation; a Smartly
integration's signing secret rotated, the new one verifying the next reply."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from connector.outbound import signing
from tests.browser import people
from tests.builders import offload, user_says
from tests.fakes import FakeChatlayerApi

pytestmark = pytest.mark.browser

OFFLOADING = "Chatlayer bot (Offloading webhook)"


@pytest.fixture
def api() -> Iterator[FakeChatlayerApi]:
    fake = FakeChatlayerApi().start()
    yield fake
    fake.stop()


def health(url: str, token: str) -> httpx.Response:
    """Chatlayer's health check on saving the Offloading webhook."""
    return httpx.get(f"{url}&challenge.verifyToken={token}", timeout=10)


def test_admin_creates_an_offloading_integration_and_manages_it(consoles, staff, live, api):
    people(live, "root", role="admin")
    console = consoles().sign_in("root")
    page = console.page
    form = page.locator("#integration-form")
    expect(form.get_by_label("Chatlayer channel URL")).to_be_visible()
    form.get_by_label(OFFLOADING).check()
    expect(form.get_by_label("Chatlayer channel URL")).to_be_hidden()
    expect(form.get_by_label("Chatlayer API token")).to_have_attribute("type", "password")

    # errors at the field the server names
    page.fill("#int-name", "Chatlayer desk")
    page.click("#int-create")
    expect(page.locator("#int-api-token-error")).to_be_visible()
    expect(page.locator("#int-api-token")).to_have_attribute("aria-invalid", "true")
    page.fill("#int-api-token", "cl-token")
    page.fill("#int-api-url", "ftp://api.example")
    page.click("#int-create")
    expect(page.locator("#int-api-url-error")).to_contain_text("http")
    expect(page.locator("#int-api-token-error")).to_have_count(0)
    page.fill("#int-api-url", api.api_url)
    page.fill("#int-token", "vt-1")
    page.click("#int-create")

    card = page.locator("article.integration[data-kind='chatlayer-offloading']")
    expect(form.get_by_label("Smartly bot (Chatlayer Webhook channel)")).to_be_checked()
    expect(form.get_by_label("Chatlayer channel URL")).to_be_visible()  # the form is reset
    integration_id = card.get_attribute("data-integration-id")
    panel = card.locator(".secret-panel")
    url_field = panel.get_by_role("textbox", name="Offloading webhook URL")
    expect(url_field).to_be_focused()
    expect(url_field).to_have_value(re.compile(
        re.escape(f"{live.url}/hooks/chatlayer-offloading/{integration_id}?key=") + r"\S+"))
    expect(panel).to_contain_text("Settings → Offloading → Webhook")
    expect(panel.get_by_role("textbox", name="verify token to paste into Chatlayer")
           ).to_have_value("vt-1")
    first_secret = panel.get_by_role("textbox", name="signing secret")
    expect(first_secret).to_have_value(re.compile(r"^whsec_"))
    signing_secret = first_secret.input_value()
    url = url_field.input_value()

    # the card of its kind: no channel rows, the API token never shown
    expect(card.locator(f"#chatlayer-url-{integration_id}")).to_have_count(0)
    expect(card).not_to_contain_text("Channel URL")
    expect(card.locator(f"#api-url-{integration_id}")).to_have_text(api.api_url)
    expect(card.locator(f"#api-token-{integration_id}")).to_have_text("set")
    expect(card.locator(f"#bot-{integration_id}")).to_have_text("bound by its first event")
    assert "cl-token" not in page.content()
    console.screenshot("admin-integrations-offloading")

    # the URL shown answers Chatlayer's health check (the verify token must match)
    r = health(url, "vt-1")
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    assert health(url, "wrong").status_code == 401

    # the first event binds the bot; shown once: gone after a reload
    r = httpx.post(url, json=offload("s-1", [user_says("help")], bot="bot-7"), timeout=10)
    assert r.status_code == 200, r.text
    page.reload()
    expect(card.locator(f"#bot-{integration_id}")).to_have_text("bot-7")
    expect(card.locator(".secret-panel")).to_have_count(0)
    expect(card).to_contain_text("Offloading URL")

    # the handback action: checked as typed, saved, reset to the default
    root = staff("root")
    card.locator("summary", has_text="Handback action (default)").click()
    editor = card.locator(f"#handback-{integration_id}")
    expect(editor).to_have_value('{\n  "pauseBot": false\n}')
    save = card.locator(f"#save-handback-{integration_id}")
    editor.fill('{"pauseBot": ')
    expect(card.locator(f"#handback-{integration_id}-error")).to_contain_text("not valid JSON")
    expect(save).to_be_disabled()
    editor.fill("[]")
    expect(card.locator(f"#handback-{integration_id}-error")).to_have_text(
        "must be a non-empty JSON object")
    action = {"pauseBot": False, "goToFlow": {"flowName": "welcome"}}
    editor.fill('{"pauseBot": false, "goToFlow": {"flowName": "welcome"}}')
    expect(card.locator(f"#handback-{integration_id}-error")).to_have_count(0)
    save.click()
    expect(card.locator("summary", has_text="Handback action (custom)")).to_be_visible()
    got = root.client.get(f"/api/integrations/{integration_id}").json()
    assert got["handback_action"] == action
    card.locator("summary", has_text="Handback action (custom)").click()
    card.locator(f"#reset-handback-{integration_id}").click()
    expect(card.locator("summary", has_text="Handback action (default)")).to_be_visible()
    assert root.client.get(f"/api/integrations/{integration_id}").json()["handback_action"] is None

    # rotate the key at once: the new Offloading URL shown once, the old one refused
    card.locator(f"#grace-{integration_id}").select_option("0")
    card.locator(f"#rotate-{integration_id}").click()
    new_url = card.locator(f"#offloading-url-{integration_id}")
    expect(new_url).to_be_focused()
    expect(card.locator(".secret-panel")).to_contain_text("New Offloading webhook URL")
    assert new_url.input_value() != url
    assert health(new_url.input_value(), "vt-1").status_code == 200
    assert health(url, "vt-1").status_code == 401

    # rotate the signing secret with a grace: shown once, the old one's grace said
    card.locator(f"#signing-grace-{integration_id}").select_option("3600")
    card.locator(f"#signing-rotate-{integration_id}").click()
    secret = card.locator(f"#signing-secret-{integration_id}")
    expect(secret).to_be_focused()
    expect(secret).to_have_value(re.compile(r"^whsec_"))
    assert secret.input_value() != signing_secret
    expect(card.locator(f"#signing-info-{integration_id}")).to_contain_text(
        "previous secret still signs until")
    card.get_by_role("button", name="I have copied it — hide").click()
    expect(card.locator(".secret-panel")).to_have_count(0)
    expect(card.locator(f"#signing-info-{integration_id}")).to_contain_text("rotated")


def test_smartly_signing_secret_rotated_signs_the_next_reply(consoles, live, channel):
    people(live, "root", role="admin")
    console = consoles().sign_in("root")
    page = console.page
    page.fill("#int-name", "Shop bot")
    page.click("#int-create")  # no channel URL: said at the field
    expect(page.locator("#int-channel-error")).to_be_visible()
    page.fill("#int-channel", channel.url)
    page.click("#int-create")
    card = page.locator("article.integration[data-kind='smartly']")
    integration_id = card.get_attribute("data-integration-id")
    expect(card.locator(f"#smartly-url-{integration_id}")).to_be_focused()
    first = card.locator(f"#signing-secret-{integration_id}").input_value()
    assert first.startswith("whsec_")
    expect(card.locator(".secret-panel")).to_contain_text("proxy in front of the channel")
    expect(card.locator(f"#signing-info-{integration_id}")).to_have_text(
        "made with the integration")

    card.locator(f"#signing-grace-{integration_id}").select_option("0")
    card.locator(f"#signing-rotate-{integration_id}").click()
    expect(card.locator(".secret-panel")).to_contain_text("New signing secret")
    secret = card.locator(f"#signing-secret-{integration_id}")
    expect(secret).not_to_have_value(first)
    new = secret.input_value()
    # the keyed URL shown at creation stays until hidden
    expect(card.locator(f"#smartly-url-{integration_id}")).to_be_visible()
    expect(card.locator(f"#signing-info-{integration_id}")).to_contain_text("rotated")
    expect(card.locator(f"#signing-info-{integration_id}")).not_to_contain_text("previous")

    # the next reply to the channel is signed with the new secret only
    card.locator(f"#test-recipient-{integration_id}").fill("u-test")
    card.locator(f"#test-{integration_id}").click()
    expect(card.locator(f"#test-result-{integration_id}")).to_contain_text("Channel answered 200")
    sent = channel.wait_delivered(1)[0]
    assert signing.verify(new, sent.headers, sent.raw)
    assert not signing.verify(first, sent.headers, sent.raw)
