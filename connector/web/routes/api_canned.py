"""Canned responses: thin routes around `domain.canned` (who may manage which is there)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts.auth import Principal
from connector.domain import canned
from connector.web.routes.deps import api, body, int_param
from connector.web.routes.schemas import CannedIn, CannedPatch


@api()
async def list_canned(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.read() as conn:
        out = await canned.readable(conn, principal.actor)
    return JSONResponse({"canned_responses": out})


@api()
async def create_canned(request: Request, principal: Principal) -> Response:
    data = await body(request, CannedIn)
    out = await request.app.state.store.write(canned.create_sync, principal.actor, data.scope,
                                              data.shortcut, data.text)
    return JSONResponse(out, status_code=201)


@api()
async def patch_canned(request: Request, principal: Principal) -> Response:
    data = await body(request, CannedPatch)
    out = await request.app.state.store.write(canned.update_sync, principal.actor,
                                              int_param(request, "id"), data.shortcut,
                                              data.text)
    return JSONResponse(out)


@api()
async def delete_canned(request: Request, principal: Principal) -> Response:
    out = await request.app.state.store.write(canned.delete_sync, principal.actor,
                                              int_param(request, "id"))
    return JSONResponse(out)


routes = [
    Route("/api/canned-responses", list_canned, methods=["GET"]),
    Route("/api/canned-responses", create_canned, methods=["POST"]),
    Route("/api/canned-responses/{id:int}", patch_canned, methods=["PATCH"]),
    Route("/api/canned-responses/{id:int}", delete_canned, methods=["DELETE"]),
]
