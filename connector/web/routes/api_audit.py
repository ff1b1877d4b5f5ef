"""Admin API: the audit trail (`domain.audit_log`), newest first, a page at a time."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts.auth import Principal
from connector.domain import audit_log
from connector.web.routes.deps import MAX_ID, api, query_int

#: The query parameters `GET /api/audit` takes.
PARAMS = ("actor", "action", "target", "from", "to", "before", "limit")


@api("admin")
async def list_audit(request: Request, principal: Principal) -> Response:
    """Events matching the filters, older than the id `before` when given; `next_before`
    is the cursor of the next page (null on the last)."""
    filters = audit_log.parse_filters(request.query_params)
    before = (query_int(request, "before", 0, 1, MAX_ID)
              if "before" in request.query_params else None)
    limit = query_int(request, "limit", 50, 1, audit_log.MAX_LIMIT)
    async with request.app.state.store.read() as conn:
        events, next_before = await audit_log.search(conn, filters, before=before,
                                                     limit=limit)
    return JSONResponse({"events": events, "next_before": next_before})


routes = [Route("/api/audit", list_audit, methods=["GET"])]
