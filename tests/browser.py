"""Playwright fixtures for the console tests: Debian's Chromium, headless.

The browser is never downloaded: tests drive `/usr/bin/chromium` (installed by
`scripts/install-test-deps.sh`). Import the fixtures into a test module with
`from tests.browser import browser_fixture, consoles_fixture  # noqa: F401`
(registered under the names `browser` and `consoles`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from tests.conftest import PASSWORD, Bot, LiveServer, add_bot, add_user

CHROMIUM = Path(os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

expect.set_options(timeout=8000)


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-test-deps.sh` "
                    "(installs Debian's chromium; a browser is never downloaded)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """One signed-in browser context on the live server."""

    def __init__(self, browser: Browser, base_url: str, **context_options: Any) -> None:
        self.base_url = base_url
        options = {"viewport": {"width": 1360, "height": 860}, "base_url": base_url,
                   "locale": "en-GB", "timezone_id": "Europe/Paris", **context_options}
        self.context: BrowserContext = browser.new_context(**options)
        self.context.set_default_timeout(8000)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", self._console)
        self.page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if os.environ.get("CONSOLE_TEST_VERBOSE"):
            print("browser:", message.type, message.text)
        if message.type == "error":
            text = message.text
            # the browser logs failed loads itself; those taken offline on purpose are expected
            if "net::ERR_INTERNET_DISCONNECTED" in text or re.search(
                    r"Failed to load resource: the server responded with a status of 4\d\d", text):
                return  # offline on purpose; an API refusal the page handles (e.g. 401 at start)
            self.errors.append(f"console: {text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self) -> Console:
        self.page.goto("/")
        try:
            expect(self.page.locator("html[data-booted='1']")).to_have_count(1)
        except AssertionError:
            raise AssertionError(f"console did not start; page errors: {self.errors}") from None
        return self

    def sign_in(self, username: str, password: str = PASSWORD) -> Console:
        if self.page.url == "about:blank":
            self.open()
        page = self.page
        page.fill("#signin-username", username)
        page.fill("#signin-password", password)
        page.click("#signin-submit")
        expect(page.locator("#shell")).to_be_visible()
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        return self

    def ticket_item(self, ticket_id: int) -> Any:
        return self.page.locator(f".ticket-item[data-ticket-id='{ticket_id}']")

    def open_ticket(self, ticket_id: int) -> None:
        self.page.goto(f"/#/ticket/{ticket_id}")
        expect(self.page.locator(".ticket-header h1")).to_be_visible()

    def message(self, text: str) -> Any:
        return self.page.locator("#transcript .msg").filter(has_text=text)

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("document.getElementById('toasts').replaceChildren()")
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    def close(self) -> None:
        # Pages first, then the context: a context closed with live pages (a console holds a
        # WebSocket and timers) once hung in Chromium under a heavily loaded machine.
        for page in self.context.pages:
            page.close()
        self.context.close()


@pytest.fixture(name="consoles")
def consoles_fixture(browser: Browser, live: LiveServer) -> Iterator[Callable[..., Console]]:
    """`consoles(**context_options)` opens a console; all are checked for JS errors."""
    opened: list[Console] = []

    def make(**options: Any) -> Console:
        console = Console(browser, live.url, **options)
        opened.append(console)
        return console.open()

    yield make
    errors = [e for c in opened for e in c.errors]
    for c in opened:
        c.close()
    assert not errors, errors


class Staff:
    """A colleague acting through the agent API (not a browser)."""

    def __init__(self, live: LiveServer, username: str, password: str = PASSWORD) -> None:
        self.client = httpx.Client(base_url=live.url, timeout=10)
        r = self.client.post("/api/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.client.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})
        assert r.status_code < 300, r.text
        return r.json()

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        r = self.client.patch(path, json=body, headers={"X-CSRF-Token": self.csrf})
        assert r.status_code < 300, r.text
        return r.json()

    def close(self) -> None:
        self.client.close()


@pytest.fixture(name="staff")
def staff_fixture(live: LiveServer) -> Iterator[Callable[..., Staff]]:
    """`staff("alice")`: a colleague signed in to the API (closed after the test)."""
    made: list[Staff] = []

    def make(username: str, password: str = PASSWORD) -> Staff:
        made.append(Staff(live, username, password))
        return made[-1]

    yield make
    for s in made:
        s.close()


def people(live: LiveServer, *names: str, role: str = "agent") -> None:
    for name in names:
        live.run(add_user(live.app, name, role))


def register_bot(live: LiveServer, channel_url: str, name: str = "bot") -> Bot:
    return live.run(add_bot(live.app, channel_url, name))


def webhook(live: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(live.url + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()
