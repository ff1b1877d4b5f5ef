"""Console safety: content is only ever text, links only http(s), no inline script."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests import builders
from tests.browser import people, register_bot, webhook

UI = Path(__file__).resolve().parents[2] / "agent_ui"
FORBIDDEN = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write(ln)?|eval|"
                       r"new\s+Function|createContextualFragment|srcdoc|setHTML)\b")

LONG_WORD = "Supercalifragilistic" * 15
RTL = "مرحبا، أحتاج إلى مساعدة — שלום, אני צריך עזרה"
EMOJI = "Merci 🙏🏽 ça marche 👩‍💻🎉"
HOSTILE = [
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss = 'img'\">",
    "<svg onload=\"window.__xss = 'svg'\"><circle r=5></circle></svg>",
    "\"><iframe src=\"javascript:window.__xss='iframe'\"></iframe>",
    "javascript:window.__xss='link'",
    LONG_WORD,
    RTL,
    EMOJI,
]


def ui_files() -> list[Path]:
    return [p for p in UI.rglob("*") if p.is_file() and p.suffix in {".js", ".html", ".css"}]


def test_no_html_injection_apis_in_the_console():
    files = ui_files()
    assert any(p.suffix == ".js" for p in files)
    offenders = [f"{p.relative_to(UI)}:{n}: {line.strip()}"
                 for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
                 if FORBIDDEN.search(line)]
    assert not offenders, offenders


def test_index_has_no_inline_script_or_style():
    html = (UI / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
    assert scripts, "index.html loads its module"
    for attrs, body in scripts:
        assert "src=" in attrs and not body.strip(), attrs
    assert not re.search(r"<style\b", html, re.I)
    assert not re.search(r"\sstyle\s*=", html, re.I)
    assert not re.search(r"\son[a-z]+\s*=", html, re.I)
    assert "javascript:" not in html.lower()
    for p in ui_files():  # and no script builds a style attribute or inline handler either
        text = p.read_text()
        assert not re.search(r"setAttribute\(\s*[\"'](style|on\w+)[\"']", text), p
        assert ".style." not in text and ".style =" not in text, p


def test_console_is_served_with_a_strict_csp(live):
    r = httpx.get(live.url + "/")
    assert r.status_code == 200 and "<script type=\"module\" src=\"js/main.js\">" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    js = httpx.get(live.url + "/js/main.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]


def hostile_chatlayer_messages(image_url: str) -> list[dict]:
    evil_url = "javascript:window.__xss='button'"
    return [
        {"attachment": {"type": "template", "payload": {
            "template_type": "button",
            "text": "<b>Pick</b> <img src=x onerror=\"window.__xss='b'\">",
            "buttons": [
                {"type": "web_url", "title": "<i>Evil link</i>", "url": evil_url},
                {"type": "web_url", "title": "Data link",
                 "url": "data:text/html,<script>1</script>"},
                {"type": "web_url", "title": "Safe site", "url": "https://example.com/help?q=<x>"},
                {"type": "postback", "title": "<svg onload=\"window.__xss='pb'\">",
                 "payload": "OPAQUE<script>"},
                {"type": "phone_number", "title": "Call us", "payload": "+33 1 23 45 67 89"},
            ]}}},
        {"text": RTL, "quick_replies": [
            {"content_type": "text", "title": "<script>window.__xss='qr'</script>",
             "payload": "Q1"},
            {"content_type": "text", "title": EMOJI, "payload": "Q2",
             "image_url": "javascript:window.__xss='qrimg'"}]},
        {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
            {"title": "<script>window.__xss='card'</script>", "subtitle": LONG_WORD,
             "image_url": "javascript:window.__xss='cardimg'", "item_url": evil_url,
             "default_action": {"type": "web_url", "url": "vbscript:msgbox(1)"},
             "buttons": [{"type": "web_url", "title": "Card evil", "url": evil_url}]},
            {"title": "Second card", "subtitle": "fine", "image_url": image_url,
             "buttons": [{"type": "postback", "title": "Choose", "payload": "C2"}]},
        ]}}},
        {"attachment": {"type": "template", "payload": {"template_type": "list", "elements": [
            {"title": "List <u>one</u>", "subtitle": "a"}, {"title": "List two", "subtitle": "b"}],
            "buttons": [{"type": "web_url", "title": "More", "url": evil_url}]}}},
        {"attachment": {"type": "image", "payload": {"url": "javascript:window.__xss='media'"}}},
    ]


@pytest.mark.browser
def test_hostile_contents_are_shown_as_text(consoles, staff, live, channel):
    bot = register_bot(live, channel.url)
    people(live, "alice")
    ticket_id = webhook(live, bot.smartly_path, builders.escalation("u-evil"))["ticket_id"]
    for text in HOSTILE:
        webhook(live, bot.smartly_path, builders.turn("u-evil", text, answer=f"echo {text}"))
    for message in hostile_chatlayer_messages(live.url + "/favicon.svg"):
        webhook(live, bot.chatlayer_path, builders.chatlayer("u-evil", bot.verify_token, message))
    staff("alice").post(f"/api/tickets/{ticket_id}/claim")

    # CSP is bypassed on purpose: the console itself must not run any of it
    console = consoles(bypass_csp=True).sign_in("alice")
    page = console.page
    page.evaluate("window.__xss = undefined")
    console.open_ticket(ticket_id)
    transcript = page.locator("#transcript")
    for text in HOSTILE:
        expect(page.locator("#transcript .msg-user .text").filter(has_text=text)).to_have_text(text)
        expect(console.message(f"echo {text}")).to_be_visible()
    agent_text = "<img src=x onerror=\"window.__xss='agent'\"> " + RTL
    page.locator("#composer-text").fill(agent_text)
    page.locator("#composer-text").press("Enter")
    expect(page.locator("#transcript .msg-agent .text")).to_have_text(agent_text)
    assert channel.wait_delivered(1)[0].body["message"]["text"] == agent_text

    # bot cards: readable, and only the http(s) button is a link
    expect(transcript.get_by_text("<b>Pick</b> <img src=x onerror=\"window.__xss='b'\">")) \
        .to_be_visible()
    expect(transcript.locator(".bot-button", has_text="<i>Evil link</i>")).to_contain_text(
        "link removed")
    safe = transcript.locator("a.bot-link", has_text="Safe site")
    expect(safe).to_have_attribute("href", "https://example.com/help?q=%3Cx%3E")
    expect(safe).to_have_attribute("target", "_blank")
    expect(safe).to_have_attribute("rel", "noopener noreferrer")
    hrefs = transcript.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs == ["https://example.com/help?q=%3Cx%3E"]
    expect(transcript.locator(".chip", has_text="<script>window.__xss='qr'</script>")) \
        .to_be_visible()
    expect(transcript.locator(".card-title", has_text="<script>")).to_be_visible()
    expect(transcript.locator(".bot-button", has_text="OPAQUE")).to_have_count(0)  # never parsed
    expect(transcript.locator(".bot-button", has_text="+33 1 23 45 67 89")).to_be_visible()
    expect(transcript.locator(".rich-list .card-title", has_text="List <u>one</u>")).to_be_visible()
    srcs = transcript.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert srcs == [live.url + "/favicon.svg"]  # the only http(s) image
    for tag in ("script", "iframe", "svg", "b", "i", "u"):
        expect(page.locator(f"#transcript .msg-body {tag}")).to_have_count(0)

    # right-to-left text runs right to left; a long word does not widen the page
    rtl = page.locator("#transcript .msg-user .text").filter(has_text=RTL)
    assert rtl.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert transcript.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    expect(page.locator("#transcript").get_by_text(EMOJI).first).to_be_visible()

    page.wait_for_timeout(300)  # give any injected handler (onerror, onload) its chance
    assert page.evaluate("window.__xss") is None
    assert console.dialogs == []
