"""`domain.rich`: which Chatlayer message objects an agent may send, the field each
refusal names, and the plain text a rich message is kept and searched as."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connector.domain import rich
from connector.domain.errors import FieldError


def quick_replies(n: int = 2) -> dict[str, Any]:
    return {"text": "Did that help?", "quick_replies": [
        {"content_type": "text", "title": f"Choice {i}", "payload": f"P{i}"} for i in range(n)]}


def buttons(*items: dict[str, Any]) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": {
        "template_type": "button", "text": "Pick one",
        "buttons": list(items) or [{"type": "postback", "title": "Go", "payload": "GO"}]}}}


def carousel(n: int = 2) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
        {"title": f"Card {i}", "subtitle": "Sub", "image_url": "https://img.example/c.png",
         "item_url": "https://shop.example/item",
         "default_action": {"type": "web_url", "url": "https://shop.example/d"},
         "buttons": [{"type": "web_url", "title": "Buy", "url": "https://shop.example/b"}]}
        for i in range(n)]}}}


def media(kind: str = "image", url: str = "https://img.example/a.png") -> dict[str, Any]:
    return {"attachment": {"type": kind, "payload": {"url": url}}}


WEB = {"type": "web_url", "title": "Site", "url": "https://example.com/x"}
CALL = {"type": "phone_number", "title": "Call us", "payload": "+33 1 23 45 67 89"}

VALID = [
    {"text": "plain"},
    quick_replies(1), quick_replies(rich.MAX_QUICK_REPLIES),
    {"text": "pick", "quick_replies": [{"title": "A", "payload": "a",
                                        "image_url": "http://img.example/a.png"}]},
    buttons(), buttons(WEB, CALL, {"type": "postback", "title": "More", "payload": "{\"x\":1}"}),
    media("image"), media("video", "http://v.example/v.mp4"),
    carousel(1), carousel(rich.MAX_ELEMENTS),
    {"attachment": {"type": "template", "payload": {"template_type": "generic",
                                                    "elements": [{"title": "Only a title"}]}}},
    {**media(), "quick_replies": quick_replies()["quick_replies"]},
]


@pytest.mark.parametrize("message", VALID)
def test_documented_shapes_are_accepted_unchanged(message):
    before = copy.deepcopy(message)
    assert rich.check(message) == before


def _set(message: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(message)
    node: Any = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


_DELETE = object()
BUTTONS = "attachment.payload.buttons"
ELEMENTS = "attachment.payload.elements"

INVALID = [
    # (message, field named, words in the message)
    ("text", "message", "object"),
    ({}, "message", "text or an attachment"),
    ({"text": "a", "attachment": media()["attachment"]}, "message", "not both"),
    ({"text": "  "}, "message.text", "empty"),
    ({"text": "x" * (rich.MAX_TEXT + 1)}, "message.text", "at most"),
    ({"text": "a\x07b"}, "message.text", "control"),
    ({"text": "a", "html": "<b>"}, "message.html", "unknown field"),
    ({"quick_replies": quick_replies()["quick_replies"]}, "message.text", "required"),
    (quick_replies(rich.MAX_QUICK_REPLIES + 1), "message.quick_replies", "1 to 13"),
    ({"text": "a", "quick_replies": []}, "message.quick_replies", "1 to 13"),
    (_set(quick_replies(), "quick_replies.1.title", _DELETE), "message.quick_replies.1.title",
     "required"),
    (_set(quick_replies(), "quick_replies.0.title", "x" * 21), "message.quick_replies.0.title",
     "at most 20"),
    (_set(quick_replies(), "quick_replies.0.content_type", "location"),
     "message.quick_replies.0.content_type", '"text"'),
    (_set(quick_replies(), "quick_replies.0.payload", 3), "message.quick_replies.0.payload",
     "string"),
    (_set(quick_replies(), "quick_replies.0.image_url", "javascript:alert(1)"),
     "message.quick_replies.0.image_url", "http(s)"),
    (buttons({**WEB, "url": "javascript:alert(1)"}), f"message.{BUTTONS}.0.url", "http(s)"),
    (buttons({**WEB, "url": "ftp://example.com/f"}), f"message.{BUTTONS}.0.url", "http(s)"),
    (buttons({**WEB, "url": "https:///nohost"}), f"message.{BUTTONS}.0.url", "http(s)"),
    (buttons({**WEB, "url": "https://exa mple.com"}), f"message.{BUTTONS}.0.url", "http(s)"),
    (buttons(WEB, WEB, WEB, WEB), f"message.{BUTTONS}", "1 to 3"),
    (_set(buttons(), "attachment.payload.buttons", []), f"message.{BUTTONS}", "1 to 3"),
    (buttons({"type": "web_url", "url": "https://example.com"}), f"message.{BUTTONS}.0.title",
     "required"),
    (buttons({"type": "web_url", "title": "x"}), f"message.{BUTTONS}.0.url", "required"),
    (buttons({"type": "postback", "title": "x"}), f"message.{BUTTONS}.0.payload", "required"),
    (buttons({"type": "element_share", "title": "x"}), f"message.{BUTTONS}.0.type", "one of"),
    (buttons({**CALL, "payload": "call me"}), f"message.{BUTTONS}.0.payload", "phone"),
    (buttons({**WEB, "payload": "x"}), f"message.{BUTTONS}.0.payload", "unknown field"),
    (_set(buttons(), "attachment.payload.text", _DELETE), "message.attachment.payload.text",
     "required"),
    (_set(buttons(), "attachment.payload.template_type", "list"),
     "message.attachment.payload.template_type", "one of"),
    (_set(buttons(), "attachment.type", "audio"), "message.attachment.type", "one of"),
    (media(url="data:image/png;base64,AAAA"), "message.attachment.payload.url", "http(s)"),
    (_set(media(), "attachment.payload", "https://x.example"), "message.attachment.payload",
     "object"),
    (carousel(rich.MAX_ELEMENTS + 1), f"message.{ELEMENTS}", "1 to 10"),
    (_set(carousel(), f"{ELEMENTS}.1.title", _DELETE), f"message.{ELEMENTS}.1.title",
     "required"),
    (_set(carousel(), f"{ELEMENTS}.0.buttons", [WEB] * 4), f"message.{ELEMENTS}.0.buttons",
     "0 to 3"),
    (_set(carousel(), f"{ELEMENTS}.0.item_url", "//example.com"), f"message.{ELEMENTS}.0.item_url",
     "http(s)"),
    (_set(carousel(), f"{ELEMENTS}.0.default_action", {"type": "postback", "url": "https://a.b"}),
     f"message.{ELEMENTS}.0.default_action.type", "web_url"),
    (_set(carousel(), f"{ELEMENTS}.0.subtitle", "y" * 81), f"message.{ELEMENTS}.0.subtitle",
     "at most 80"),
]


@pytest.mark.parametrize(("message", "field", "words"), INVALID)
def test_each_refusal_names_the_field(message, field, words):
    with pytest.raises(FieldError) as caught:
        rich.check(message)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_plain_text_says_what_the_end_user_reads():
    assert rich.plain_text({"text": "hi"}) == "hi"
    assert rich.plain_text(quick_replies()) == "Did that help?\n[Choice 0 | Choice 1]"
    assert rich.plain_text(buttons(WEB, CALL)) == "Pick one\n[Site | Call us]"
    assert rich.plain_text(media("video", "https://v.example/v.mp4")) == (
        "[video] https://v.example/v.mp4")
    assert rich.plain_text(carousel(2)) == "Card 0 - Sub\n[Buy]\nCard 1 - Sub\n[Buy]"
