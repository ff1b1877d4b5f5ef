"""Webhook endpoints: thin wrappers around `ingest` and the group-commit writer.

Every bot turn of every conversation arrives here, so these are plain ASGI
apps rather than request/response functions: no `Request` object, no
response class, a JSON answer written straight to `send`, and
`lanes.FastLanes` takes their POSTs past the router. They still sit behind the app's access
log, security headers and error handling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connector.accounts import integrations
from connector.accounts.security import tokens_equal
from connector.ingest import inbound as ingest
from connector.ingest.batcher import IngestFailed, IngestRefused
from connector.ingest.inbound import BadInput, Inbound
from connector.storage.models import Integration
from connector.web.http import ClientGone, HTTPError, parse_json, receive_body, send_json

_UNAUTHORIZED = ("unauthorized", "unknown integration or wrong key")


async def _authorized(state: Any, integration_id: str, check: Callable[[Integration], bool],
                      ) -> Integration | None:
    """The integration when `check` passes, re-reading it once before refusing."""
    integration = await state.integrations.get(integration_id)
    if integration is not None and check(integration):
        return integration
    integration = await state.integrations.get(integration_id, fresh=True)
    return integration if integration is not None and check(integration) else None


def _query_key(scope: Scope) -> str:
    query: bytes = scope["query_string"]
    if not query:
        return ""
    if query.startswith(b"key=") and b"&" not in query and b"%" not in query \
            and b"+" not in query:
        return query[4:].decode("latin-1")  # the usual `?key=...`: nothing to unquote
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "key":
            return value
    return ""


async def smartly(state: Any, scope: Scope, receive: Receive) -> tuple[int, Any]:
    key = _query_key(scope)
    integration = await _authorized(state, scope["path_params"]["integration_id"],
                                    lambda i: bool(key) and integrations.key_valid(i, key))
    if integration is None:
        raise HTTPError(401, *_UNAUTHORIZED)
    raw = await receive_body(scope, receive, state.settings.max_body_bytes)
    body = parse_json(raw)
    try:
        inbound = ingest.parse_smartly(integration.id, body, raw)
    except BadInput as exc:
        raise HTTPError(422, "invalid", str(exc), exc.errors) from None
    return await _submit(state, inbound)


async def chatlayer(state: Any, scope: Scope, receive: Receive) -> tuple[int, Any]:
    raw = await receive_body(scope, receive, state.settings.max_body_bytes)
    body = parse_json(raw)
    token = body.get("verifyToken") if isinstance(body, dict) else None
    integration = await _authorized(
        state, scope["path_params"]["integration_id"],
        lambda i: isinstance(token, str) and tokens_equal(token, i.verify_token))
    if integration is None:
        raise HTTPError(401, "unauthorized", "unknown integration or wrong verify token")
    try:
        inbound = ingest.parse_chatlayer(integration.id, body, raw)
    except BadInput as exc:
        raise HTTPError(422, "invalid", str(exc), exc.errors) from None
    return await _submit(state, inbound)


async def _submit(state: Any, inbound: Inbound) -> tuple[int, Any]:
    try:
        result = await state.ingest.submit(inbound)
    except IngestFailed:
        raise HTTPError(503, "unavailable", "could not store the event; retry later") from None
    except IngestRefused:
        raise HTTPError(422, "unstorable", "the event cannot be stored; sending it again "
                        "will not help") from None
    return 200 if inbound.known else 202, {
        "status": result.status, "event_id": result.event_id,
        "ticket_id": result.ticket_id, "ticket_opened": result.opened}


class Webhook:
    """One webhook as an ASGI app: `handler` answers (status, JSON body) or raises HTTPError."""

    def __init__(self, handler: Callable[[Any, Scope, Receive], Any]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = await self.handler(scope["app"].state, scope, receive)
        except HTTPError as exc:
            await exc.response()(scope, receive, send)
            return
        except ClientGone:
            return  # nobody to answer; nothing was stored
        await send_json(send, status, body)


smartly_app, chatlayer_app = Webhook(smartly), Webhook(chatlayer)

routes = [
    Route("/hooks/smartly/{integration_id}", smartly_app, methods=["POST"]),
    Route("/hooks/chatlayer/{integration_id}", chatlayer_app, methods=["POST"]),
]
