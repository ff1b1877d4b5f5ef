"""Webhook endpoints: thin wrappers around `ingest` and the group-commit writer."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector import ingest, integrations
from connector.batcher import IngestFailed
from connector.http import HTTPError, error_response, json_body
from connector.ingest import BadInput, Inbound
from connector.models import Integration
from connector.security import tokens_equal

_UNAUTHORIZED = ("unauthorized", "unknown integration or wrong key")


async def _integration(request: Request, fresh: bool = False) -> Integration | None:
    cache = request.app.state.integrations
    return await cache.get(request.path_params["integration_id"], fresh=fresh)


async def _authorized(request: Request, check: Callable[[Integration], bool],
                      ) -> Integration | None:
    """The integration when `check` passes, re-reading it once before refusing."""
    integration = await _integration(request)
    if integration is not None and check(integration):
        return integration
    integration = await _integration(request, fresh=True)
    return integration if integration is not None and check(integration) else None


async def smartly(request: Request) -> Response:
    key = request.query_params.get("key", "")
    integration = await _authorized(
        request, lambda i: bool(key) and integrations.key_valid(i, key))
    if integration is None:
        return error_response(401, *_UNAUTHORIZED)
    settings = request.app.state.settings
    try:
        body, raw = await json_body(request, settings.max_body_bytes)
        inbound = ingest.parse_smartly(integration.id, body, raw)
    except HTTPError as exc:
        return exc.response()
    except BadInput as exc:
        return error_response(422, "invalid", str(exc), exc.errors)
    return await _submit(request, inbound)


async def chatlayer(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        body, raw = await json_body(request, settings.max_body_bytes)
    except HTTPError as exc:
        return exc.response()
    token = body.get("verifyToken") if isinstance(body, dict) else None
    integration = await _authorized(
        request, lambda i: isinstance(token, str) and tokens_equal(token, i.verify_token))
    if integration is None:
        return error_response(401, "unauthorized", "unknown integration or wrong verify token")
    try:
        inbound = ingest.parse_chatlayer(integration.id, body, raw)
    except BadInput as exc:
        return error_response(422, "invalid", str(exc), exc.errors)
    return await _submit(request, inbound)


async def _submit(request: Request, inbound: Inbound) -> Response:
    try:
        result = await request.app.state.ingest.submit(inbound)
    except IngestFailed:
        return error_response(503, "unavailable", "could not store the event; retry later")
    body = {"status": result.status, "event_id": result.event_id,
            "ticket_id": result.ticket_id, "ticket_opened": result.opened}
    return JSONResponse(body, status_code=200 if inbound.known else 202)


routes = [
    Route("/hooks/smartly/{integration_id}", smartly, methods=["POST"]),
    Route("/hooks/chatlayer/{integration_id}", chatlayer, methods=["POST"]),
]
