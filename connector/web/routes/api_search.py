"""`GET /api/search`: full-text search of the messages one may read (`domain.search`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts.auth import Principal
from connector.domain import search
from connector.web.routes.deps import api

#: The query parameters `search.parse` reads.
PARAMS = ("q", "state", "integration", "from", "to", "limit", "before", "label")


@api()
async def search_messages(request: Request, principal: Principal) -> Response:
    """Matching messages, newest first, a page at a time (`before`: the previous page's
    `next_before`); 422 naming the parameter at fault."""
    query = search.parse({name: request.query_params.get(name) for name in PARAMS})
    async with request.app.state.store.read() as conn:
        out = await search.search(conn, principal.actor, query)
    return JSONResponse(out)


routes = [Route("/api/search", search_messages, methods=["GET"])]
