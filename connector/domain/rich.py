"""Rich replies: the Chatlayer message objects an agent may send, checked before they
are stored, and their plain-text reading.

An agent's message is delivered unchanged in the channel's body (`{"message": ...}`),
so it must be one the channel renders. Accepted shapes (Chatlayer's message
specification, Messenger's limits where Chatlayer follows them):

- text: `{"text"}`, 1 to `MAX_TEXT` characters;
- quick replies: `{"text", "quick_replies": [{"content_type": "text", "title",
  "payload", "image_url"?}]}`, 1 to `MAX_QUICK_REPLIES`, titles up to `MAX_TITLE`;
- a button template: `{"attachment": {"type": "template", "payload":
  {"template_type": "button", "text", "buttons": [...]}}}`, 1 to `MAX_BUTTONS`;
- an image or a video by URL: `{"attachment": {"type": "image"|"video", "payload":
  {"url"}}}`;
- a carousel: `template_type: "generic"`, 1 to `MAX_ELEMENTS` elements, each with a
  `title` and optional `subtitle`, `image_url`, `item_url`, `default_action`
  (`{"type": "web_url", "url"}`) and up to `MAX_BUTTONS` buttons.

A button is `web_url` (with an http(s) `url`), `postback` (with an opaque `payload`)
or `phone_number` (with the number as `payload`). Every URL is absolute http(s).
Unknown keys are refused rather than passed on, so what the agent previews is what the
end user gets. Each refusal is a `FieldError` naming the offending path from
`message` (`message.attachment.payload.buttons.3.url`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from connector.domain.errors import FieldError

MAX_TEXT = 2000
MAX_BUTTON_TEXT = 640
MAX_TITLE = 20
MAX_ELEMENT_TITLE = 80
MAX_PAYLOAD = 1000
MAX_URL = 2000
MAX_QUICK_REPLIES = 13
MAX_BUTTONS = 3
MAX_ELEMENTS = 10
BUTTON_TYPES = ("web_url", "postback", "phone_number")
MEDIA_TYPES = ("image", "video")
TEMPLATE_TYPES = ("button", "generic")
#: A phone number as Messenger wants it: `+`, then 7 to 15 digits (spaces allowed).
PHONE = re.compile(r"^\+[0-9][0-9 ]{5,18}[0-9]$")


def check(message: Any) -> dict[str, Any]:
    """`message` if it is a message the channel renders; `FieldError` otherwise."""
    path = "message"
    obj = _object(message, path, ("text", "quick_replies", "attachment"))
    if not obj:
        raise FieldError(path, "must have text or an attachment")
    if "text" in obj and "attachment" in obj:
        raise FieldError(path, "give text or an attachment, not both")
    if "text" in obj:
        _text(obj["text"], f"{path}.text", MAX_TEXT)
    elif "attachment" in obj:
        _attachment(obj["attachment"], f"{path}.attachment")
    else:
        raise FieldError(f"{path}.text", "is required")
    if "quick_replies" in obj:
        _quick_replies(obj["quick_replies"], f"{path}.quick_replies")
    return obj


def plain_text(message: dict[str, Any]) -> str:
    """What a checked message says, as one text for the transcript and search: its
    text, the titles of its choices, its cards' titles and subtitles, its media URL."""
    parts: list[str] = []
    if "text" in message:
        parts.append(message["text"])
    attachment = message.get("attachment")
    if attachment:
        payload = attachment["payload"]
        if attachment["type"] in MEDIA_TYPES:
            parts.append(f"[{attachment['type']}] {payload['url']}")
        elif payload["template_type"] == "button":
            parts.append(payload["text"])
            parts.append(_choices(payload["buttons"]))
        else:
            for element in payload["elements"]:
                parts.append(" - ".join(
                    element[k] for k in ("title", "subtitle") if element.get(k)))
                parts.append(_choices(element.get("buttons", [])))
    parts.append(_choices(message.get("quick_replies", [])))
    return "\n".join(p for p in parts if p)


def _choices(items: list[dict[str, Any]]) -> str:
    """`[A | B]` for choices titled A and B; empty for none."""
    return f"[{' | '.join(item['title'] for item in items)}]" if items else ""


def _object(value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError(path, "must be an object")
    for key in value:
        if key not in allowed:
            raise FieldError(f"{path}.{key}", f"unknown field (allowed: {', '.join(allowed)})")
    return value


def _list(value: Any, path: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list):
        raise FieldError(path, "must be a list")
    if not low <= len(value) <= high:
        raise FieldError(path, f"must hold {low} to {high} items, not {len(value)}")
    return value


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        raise FieldError(f"{path}.{key}", "is required")
    return obj[key]


def _text(value: Any, path: str, limit: int) -> str:
    if not isinstance(value, str):
        raise FieldError(path, "must be a string")
    if not value.strip():
        raise FieldError(path, "must not be empty")
    if len(value) > limit:
        raise FieldError(path, f"must be at most {limit} characters")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in value):
        raise FieldError(path, "must not contain control characters")
    return value


def _url(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise FieldError(path, "must be a string")
    if len(value) > MAX_URL:
        raise FieldError(path, f"must be at most {MAX_URL} characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not host
            or any(c.isspace() or unicodedata.category(c) == "Cc" for c in value)):
        raise FieldError(path, "must be an absolute http(s) URL")
    return value


def _quick_replies(value: Any, path: str) -> None:
    for i, item in enumerate(_list(value, path, 1, MAX_QUICK_REPLIES)):
        here = f"{path}.{i}"
        reply = _object(item, here, ("content_type", "title", "payload", "image_url"))
        if reply.get("content_type", "text") != "text":
            raise FieldError(f"{here}.content_type", 'must be "text"')
        _text(_required(reply, "title", here), f"{here}.title", MAX_TITLE)
        _text(_required(reply, "payload", here), f"{here}.payload", MAX_PAYLOAD)
        if "image_url" in reply:
            _url(reply["image_url"], f"{here}.image_url")


def _attachment(value: Any, path: str) -> None:
    attachment = _object(value, path, ("type", "payload"))
    kind = _required(attachment, "type", path)
    payload_path = f"{path}.payload"
    if kind in MEDIA_TYPES:
        payload = _object(_required(attachment, "payload", path), payload_path, ("url",))
        _url(_required(payload, "url", payload_path), f"{payload_path}.url")
    elif kind == "template":
        _template(_required(attachment, "payload", path), payload_path)
    else:
        raise FieldError(f"{path}.type", "must be one of template, image, video")


def _template(value: Any, path: str) -> None:
    payload = _object(value, path, ("template_type", "text", "buttons", "elements"))
    kind = _required(payload, "template_type", path)
    if kind == "button":
        _object(payload, path, ("template_type", "text", "buttons"))
        _text(_required(payload, "text", path), f"{path}.text", MAX_BUTTON_TEXT)
        _buttons(_required(payload, "buttons", path), f"{path}.buttons", 1)
    elif kind == "generic":
        _object(payload, path, ("template_type", "elements"))
        elements = _list(_required(payload, "elements", path), f"{path}.elements", 1,
                         MAX_ELEMENTS)
        for i, element in enumerate(elements):
            _element(element, f"{path}.elements.{i}")
    else:
        raise FieldError(f"{path}.template_type", f"must be one of {', '.join(TEMPLATE_TYPES)}")


def _element(value: Any, path: str) -> None:
    element = _object(value, path, ("title", "subtitle", "image_url", "item_url",
                                    "default_action", "buttons"))
    _text(_required(element, "title", path), f"{path}.title", MAX_ELEMENT_TITLE)
    if "subtitle" in element:
        _text(element["subtitle"], f"{path}.subtitle", MAX_ELEMENT_TITLE)
    for key in ("image_url", "item_url"):
        if key in element:
            _url(element[key], f"{path}.{key}")
    if "default_action" in element:
        here = f"{path}.default_action"
        action = _object(element["default_action"], here, ("type", "url"))
        if action.get("type") != "web_url":
            raise FieldError(f"{here}.type", 'must be "web_url"')
        _url(_required(action, "url", here), f"{here}.url")
    if "buttons" in element:
        _buttons(element["buttons"], f"{path}.buttons", 0)


def _buttons(value: Any, path: str, low: int) -> None:
    for i, item in enumerate(_list(value, path, low, MAX_BUTTONS)):
        here = f"{path}.{i}"
        button = _object(item, here, ("type", "title", "url", "payload"))
        kind = _required(button, "type", here)
        if kind not in BUTTON_TYPES:
            raise FieldError(f"{here}.type", f"must be one of {', '.join(BUTTON_TYPES)}")
        _text(_required(button, "title", here), f"{here}.title", MAX_TITLE)
        if kind == "web_url":
            _object(button, here, ("type", "title", "url"))
            _url(_required(button, "url", here), f"{here}.url")
            continue
        _object(button, here, ("type", "title", "payload"))
        payload = _text(_required(button, "payload", here), f"{here}.payload", MAX_PAYLOAD)
        if kind == "phone_number" and not PHONE.match(payload):
            raise FieldError(f"{here}.payload",
                             "must be a phone number in international form (+ and digits)")
