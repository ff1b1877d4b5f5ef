"""Admin API: erase one end user (`domain.erasure`), recorded in the audit trail."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts.auth import Principal
from connector.domain import erasure
from connector.web.routes.deps import api, audit_actor, body
from connector.web.routes.end_user_models import EraseIn


@api("admin")
async def erase(request: Request, principal: Principal) -> Response:
    data = await body(request, EraseIn)
    actor = audit_actor(request, principal)
    store = request.app.state.store
    async with store.read() as conn:  # the long scans, holding no write lock
        found = await erasure.scan(conn, data.integration, data.end_user)
    async with store.begin() as conn:
        erased = await erasure.erase(conn, data.integration, data.end_user, actor, found)
    return JSONResponse(erased.as_dict())


routes = [Route("/api/end-users/erase", erase, methods=["POST"])]
