"""One's own account in the console: a password to change before anything else (set by
an admin in the users page), and the account dialog (display name, password)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import people
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_a_password_to_change_comes_before_anything_else(consoles, live):
    people(live, "root", role="admin")
    admin = consoles().sign_in("root")
    page = admin.page
    page.click("#admin-tab-users")
    page.fill("#user-name", "carol")
    page.fill("#user-password", "given by the admin")
    expect(page.locator("#user-must-change")).to_be_checked()  # the default
    page.click("#user-create")
    row = page.locator("#users-table tr[data-username='carol']")
    expect(row.locator(".badge-warn")).to_have_text("new password due")

    carol = consoles()
    p = carol.page
    p.fill("#signin-username", "carol")
    p.fill("#signin-password", "given by the admin")
    p.click("#signin-submit")
    expect(p.locator("#password-change")).to_be_visible()
    expect(p.locator("#shell")).to_be_hidden()
    expect(p.locator("#password-change .form-note")).to_contain_text("must be changed")
    carol.screenshot("password-change-required")

    p.fill("#pwchange-current", "not the password")
    p.fill("#pwchange-new", "carol's own secret")
    p.fill("#pwchange-again", "carol's own secret")
    p.click("#pwchange-submit")
    expect(p.locator("#pwchange-form .form-error")).to_have_text(
        "That is not your current password.")
    p.fill("#pwchange-current", "given by the admin")
    p.fill("#pwchange-new", "carol's own secret")
    p.fill("#pwchange-again", "carol's own secret")
    p.click("#pwchange-submit")
    expect(p.locator("#shell")).to_be_visible()
    expect(p.locator("#conn")).to_have_attribute("data-state", "live")
    expect(p.locator("#password-change")).to_have_count(0)

    page.reload()
    page.click("#admin-tab-users")
    expect(row).to_be_visible()
    expect(row.locator(".badge-warn")).to_have_count(0)


def test_the_account_dialog_sets_ones_display_name_and_password(consoles, live):
    people(live, "alice")
    console = consoles().sign_in("alice")
    page = console.page
    expect(page.locator("#whoami .whoami-name")).to_have_text("alice")
    page.click("#account-button")
    page.fill("#account-display-name", "Alice Martin")
    page.click("#account-name-save")
    expect(page.locator("#whoami .whoami-name")).to_have_text("Alice Martin")

    page.fill("#account-pw-current", "wrong one")
    page.fill("#account-pw-new", "alice new secret")
    page.fill("#account-pw-again", "alice different")
    page.click("#account-pw-submit")
    expect(page.locator("#account-pw-form .form-error")).to_have_text(
        "The two new passwords differ.")
    page.fill("#account-pw-current", PASSWORD)
    page.fill("#account-pw-again", "alice new secret")
    console.screenshot("account-dialog")
    page.click("#account-pw-submit")
    expect(page.locator("#dlg-account")).to_be_hidden()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")  # still signed in

    page.reload()
    expect(page.locator("#whoami .whoami-name")).to_have_text("Alice Martin")
    other = consoles().sign_in("alice", "alice new secret")
    expect(other.page.locator("#shell")).to_be_visible()
