"""Small HTTP helpers shared by the routes: JSON errors and bounded bodies."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 fields: list[dict[str, str]] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.extra = fields, extra

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.fields, **self.extra)


def error_response(status: int, code: str, message: str,
                   fields: list[dict[str, str]] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message, **extra}
    if fields:
        body["fields"] = fields
    return JSONResponse(body, status_code=status)


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read at most `limit` bytes; refuse larger bodies without reading them all."""
    declared = header(scope, b"content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise HTTPError(400, "bad_request", "invalid Content-Length header")
        if int(declared) > limit:
            raise HTTPError(413, "too_large", f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_body(request: Request, limit: int) -> bytes:
    return await receive_body(request.scope, request.receive, limit)


async def send_json(send: Send, status: int, body: Any) -> None:
    """A JSON response straight to ASGI `send` (for hot paths; same bytes as JSONResponse)."""
    content = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]})
    await send({"type": "http.response.body", "body": content})


def _not_json(name: str) -> Any:
    # Python's parser accepts NaN and Infinity; JSON does not, nor can PostgreSQL store them.
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise HTTPError(400, "malformed_json", "malformed JSON: empty body")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "malformed_json", "malformed JSON: body is not UTF-8") from None
    try:
        return orjson.loads(raw)  # strict JSON, several times faster than the stdlib
    except orjson.JSONDecodeError:
        pass
    # Not JSON (or beyond orjson, e.g. integers over 64 bits): the stdlib parser says
    # precisely what is wrong, and where.
    try:
        return json.loads(raw, parse_constant=_not_json)
    except UnicodeDecodeError:
        raise HTTPError(400, "malformed_json", "malformed JSON: body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise HTTPError(400, "malformed_json", f"malformed JSON: {exc.msg} at line "
                        f"{exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise HTTPError(400, "malformed_json", f"malformed JSON: {exc}") from None


async def json_body(request: Request, limit: int) -> tuple[Any, bytes]:
    raw = await read_body(request, limit)
    return parse_json(raw), raw
