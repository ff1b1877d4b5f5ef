"""Admin API: an integration disabled, enabled again, or deleted
(`accounts.integration_state`; each recorded in the audit trail).

A change takes effect in this process at once (the integration cache forgets the
row), on the other instances within `integrations.CACHE_SECONDS`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts import integration_state
from connector.accounts.auth import Principal
from connector.web.http import HTTPError
from connector.web.routes.api_admin import integration_out
from connector.web.routes.deps import api, audit_actor


async def _set_disabled(request: Request, principal: Principal, disabled: bool) -> Response:
    integration_id = request.path_params["id"]
    async with request.app.state.store.transaction() as tx:
        row = await integration_state.set_disabled(
            tx.conn, integration_id, disabled, audit_actor(request, principal))
    request.app.state.integrations.forget(integration_id)
    if not disabled:
        request.app.state.delivery.wake()  # its paused replies go out now
    return JSONResponse(integration_out(request, row))


@api("admin")
async def disable(request: Request, principal: Principal) -> Response:
    """Its webhooks answer 403 `integration_disabled` and store nothing; its queued
    replies wait until it is enabled."""
    return await _set_disabled(request, principal, True)


@api("admin")
async def enable(request: Request, principal: Principal) -> Response:
    return await _set_disabled(request, principal, False)


@api("admin")
async def delete(request: Request, principal: Principal) -> Response:
    """`?with_conversations=true` deletes its conversations too; without it, 409 while
    it has any."""
    raw = request.query_params.get("with_conversations", "false")
    if raw not in ("true", "false"):
        raise HTTPError(422, "invalid", "with_conversations: must be true or false",
                        [{"field": "with_conversations", "message": "must be true or false"}])
    integration_id = request.path_params["id"]
    state = request.app.state
    deleted = await integration_state.delete(
        state.store.begin, integration_id, audit_actor(request, principal),
        with_conversations=raw == "true")
    state.integrations.forget(integration_id)
    return JSONResponse({"deleted": deleted})


routes = [
    Route("/api/integrations/{id}/disable", disable, methods=["POST"]),
    Route("/api/integrations/{id}/enable", enable, methods=["POST"]),
    Route("/api/integrations/{id}", delete, methods=["DELETE"]),
]
