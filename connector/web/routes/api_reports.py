"""Ticket reports for supervisors and admins: thin wrappers around `ticket_reports`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from connector.accounts.auth import Principal
from connector.domain import ticket_reports
from connector.domain.roles import STAFF
from connector.storage.db import utcnow
from connector.web.routes.deps import api


def _range(request: Request) -> ticket_reports.DateRange:
    return ticket_reports.parse_range(request.query_params.get("from"),
                                      request.query_params.get("to"),
                                      request.query_params.get("label"))


@api(*STAFF)
async def tickets_csv(request: Request, principal: Principal) -> Response:
    """One row per handover of the range, streamed a chunk of tickets at a time; the first
    chunk is read before the answer starts (a failure then is still an error answer)."""
    rng = _range(request)
    store, now = request.app.state.store, utcnow()
    first = await ticket_reports.first_chunk(store, rng, now)
    return StreamingResponse(
        ticket_reports.csv_chunks(store, rng, now, first), media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{rng.filename}"'})


@api(*STAFF)
async def tickets_figures(request: Request, principal: Principal) -> Response:
    rng = _range(request)
    by = ticket_reports.parse_by(request.query_params.get("by"))
    out = await ticket_reports.figures(request.app.state.store, rng, by, utcnow())
    return JSONResponse(out)


routes = [
    Route("/api/reports/tickets.csv", tickets_csv, methods=["GET"]),
    Route("/api/reports/tickets", tickets_figures, methods=["GET"]),
]
