"""Small HTTP helpers shared by the routes: JSON errors and bounded bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from connector.web import jsonin


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


class BodyTimeout(HTTPError):
    """The request body did not arrive in time: 408, and the connection is closed (its
    client may still be sending the rest)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, "timeout", f"request body not received within {seconds:g} s")

    def response(self) -> JSONResponse:
        response = super().response()
        response.headers["connection"] = "close"
        return response


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body of a raw ASGI request, at most `limit` bytes (see `bounded`)."""

    async def chunk() -> tuple[bytes, bool]:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        return message.get("body", b""), message.get("more_body", False)

    return await bounded(chunk, header(scope, b"content-length"), limit, _body_timeout(scope))


async def read_body(request: Request, limit: int) -> bytes:
    """A Starlette request's body (which it may already hold), at most `limit` bytes."""
    declared = request.headers.get("content-length")
    stream = request.stream()

    async def chunk() -> tuple[bytes, bool]:
        try:
            return await stream.__anext__(), True
        except StopAsyncIteration:
            return b"", False

    return await bounded(chunk, declared.encode("latin-1") if declared else None,
                         limit, _body_timeout(request.scope))


def _body_timeout(scope: Scope) -> float:
    """The app's `CONNECTOR_BODY_TIMEOUT_SECONDS` (Starlette puts the app in every scope)."""
    return float(scope["app"].state.settings.body_timeout_seconds)


async def bounded(chunk: Callable[[], Awaitable[tuple[bytes, bool]]], declared: bytes | None,
                  limit: int, within: float) -> bytes:
    """Read at most `limit` bytes within `within` seconds; refuse larger bodies without
    reading them all, and slower ones with `BodyTimeout`. `chunk()` gives the next part of
    the body and whether more follows (a plain call, not an async iterator: this runs for
    every webhook)."""
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise HTTPError(400, "bad_request", "invalid Content-Length header")
        if int(declared) > limit:
            raise HTTPError(413, "too_large", f"body larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within):
            more = True
            while more:
                part, more = await chunk()
                size += len(part)
                if size > limit:
                    raise HTTPError(413, "too_large", f"body larger than {limit} bytes")
                parts.append(part)
    except TimeoutError:
        raise BodyTimeout(within) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def send_json(send: Send, status: int, body: Any) -> None:
    """A JSON response straight to ASGI `send` (for hot paths; same bytes as JSONResponse)."""
    content = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]})
    await send({"type": "http.response.body", "body": content})


def parse_json(raw: bytes) -> Any:
    """A request body as JSON through the door of `jsonin`: 400 when it is not JSON, 422
    naming the field when it is JSON we could not store."""
    try:
        return jsonin.load(raw)
    except jsonin.Malformed as exc:
        raise HTTPError(400, "malformed_json", f"malformed JSON: {exc}") from None
    except jsonin.Unstorable as exc:
        raise HTTPError(422, "invalid", str(exc),
                        [{"field": exc.field, "message": exc.message}]) from None
