"""The console after a network drop: it reconnects by itself and shows what it missed."""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from connector.realtime import stream
from connector.storage.db import utcnow
from tests import builders
from tests.browser import people, register_bot, webhook

pytestmark = pytest.mark.browser


async def _forget_stream(app) -> None:
    """Prune every stored stream event, as retention would after a long absence."""
    async with app.state.store.transaction() as tx:
        await stream.prune(tx.conn, utcnow() + dt.timedelta(seconds=1))


async def _close_sockets(app, code: int) -> None:
    for client in list(app.state.hub.clients):
        client.close(code, "test")


def _wait_for(page, expression: str, within: float = 10.0) -> None:
    """Poll `expression` until it is truthy: page.wait_for_function's job, which cannot be
    used here. Since Playwright 1.65 it eval()s its predicate in the page, and the console's
    CSP (script-src 'self', no 'unsafe-eval') refuses that; page.evaluate goes through the
    DevTools protocol, which the page's CSP does not govern."""
    deadline = time.monotonic() + within
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        page.wait_for_timeout(20)


def _record_messages(page) -> list[str]:
    """The text of every WebSocket message the page receives from now on."""
    received: list[str] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: received.append(
            payload if isinstance(payload, str) else payload.decode())))
    return received


def _arrays(received: list[str]) -> list[list[dict]]:
    """The messages that carried several frames (a JSON array)."""
    return [m for m in map(json.loads, list(received)) if isinstance(m, list)]


def test_offline_then_online_shows_missed_events_without_reload(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    people(live, "sam", role="supervisor")
    mine = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    waiting = webhook(live, bot.smartly_path, builders.escalation("u-2"))["ticket_id"]
    staff("alice").post(f"/api/tickets/{mine}/claim")

    console = consoles().sign_in("alice")
    page = console.page
    console.open_ticket(mine)
    expect(console.ticket_item(waiting)).to_be_visible()
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.__marker = 'still here'")
    connects = page.evaluate("document.documentElement.dataset.streamConnects")
    received = _record_messages(page)

    console.context.set_offline(True)
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    # meanwhile: a new escalation, the end user writes, a colleague takes the waiting
    # ticket, and the supervisor leaves a note on ours
    new = webhook(live, bot.smartly_path, builders.escalation("u-3", lang="en-gb"))["ticket_id"]
    webhook(live, bot.smartly_path, builders.turn("u-1", "Hello? Anyone there?", answer=None))
    staff("bob").post(f"/api/tickets/{waiting}/claim")
    staff("sam").post(f"/api/tickets/{mine}/notes", {"text": "Customer is VIP, be gentle"})
    page.wait_for_timeout(300)
    expect(console.ticket_item(new)).to_have_count(0)  # really offline: nothing arrived

    console.context.set_offline(False)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(console.ticket_item(new)).to_be_visible()
    expect(console.ticket_item(new).locator(".badge-lang")).to_have_text("EN-GB")
    expect(console.ticket_item(waiting)).to_have_count(0)
    expect(console.message("Hello? Anyone there?")).to_have_class("msg msg-user")
    expect(console.message("Customer is VIP, be gentle")).to_have_class("msg msg-note")
    assert page.evaluate("window.__marker") == "still here"
    assert navigations == []
    reconnected = int(page.evaluate("document.documentElement.dataset.streamConnects"))
    assert reconnected == int(connects) + 1
    # each missed message once, no duplicate from the replay
    expect(console.message("Hello? Anyone there?")).to_have_count(1)
    # the replay came as one array message, applied frame by frame
    (replay,) = _arrays(received)
    assert len(replay) >= 4 and replay[0]["cursor"] < replay[-1]["cursor"]


def test_a_burst_of_events_coalesced_into_arrays_is_shown_once(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    mine = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    staff("alice").post(f"/api/tickets/{mine}/claim")
    console = consoles()
    received = _record_messages(console.page)
    console.sign_in("alice")
    console.open_ticket(mine)

    def say(n: int) -> None:
        webhook(live, bot.smartly_path, builders.turn("u-1", f"burst {n}.", answer=None))

    with ThreadPoolExecutor(12) as pool:  # group commits: several events per message
        list(pool.map(say, range(36)))
    queued = [webhook(live, bot.smartly_path, builders.escalation(f"u-q{n}"))["ticket_id"]
              for n in range(3)]
    for n in range(36):
        expect(console.message(f"burst {n}.")).to_have_count(1)
    for ticket in queued:
        expect(console.ticket_item(ticket)).to_be_visible()
    assert _arrays(received), "no array message: nothing was coalesced"
    assert console.page.locator("#conn").get_attribute("data-state") == "live"


def test_server_dropping_the_socket_is_resumed_from_the_cursor(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    mine = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    staff("alice").post(f"/api/tickets/{mine}/claim")
    console = consoles().sign_in("alice")
    page = console.page
    console.open_ticket(mine)
    page.evaluate("window.__marker = 1")
    connects = int(page.evaluate("document.documentElement.dataset.streamConnects"))

    live.run(_close_sockets(live.app, 4008))  # "too slow": the client resumes at once
    for n in range(3):
        webhook(live, bot.smartly_path, builders.turn("u-1", f"message {n}", answer=None))
    # The second drop must find a socket: wait until the client is back first.
    _wait_for(page, f"Number(document.documentElement.dataset.streamConnects) >= {connects + 1}"
                    " && document.querySelector('#conn').dataset.state === 'live'")
    live.run(_close_sockets(live.app, 1011))  # a server error: reconnect with backoff
    other = webhook(live, bot.smartly_path, builders.escalation("u-5"))["ticket_id"]

    for n in range(3):
        expect(console.message(f"message {n}")).to_have_count(1)
    expect(console.ticket_item(other)).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert int(page.evaluate("document.documentElement.dataset.streamConnects")) >= connects + 2
    assert page.evaluate("window.__marker") == 1


def test_too_old_cursor_gets_a_resync_and_the_lists_reload(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice", "bob")
    gone = webhook(live, bot.smartly_path, builders.escalation("u-1"))["ticket_id"]
    console = consoles().sign_in("alice")
    page = console.page
    expect(console.ticket_item(gone)).to_be_visible()
    page.evaluate("window.__marker = 1")
    console.context.set_offline(True)
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    staff("bob").post(f"/api/tickets/{gone}/claim")
    new = webhook(live, bot.smartly_path, builders.escalation("u-2"))["ticket_id"]
    live.run(_forget_stream(live.app))  # the missed events cannot be replayed any more
    console.context.set_offline(False)
    expect(console.ticket_item(new)).to_be_visible()
    expect(console.ticket_item(gone)).to_have_count(0)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__marker") == 1
