"""Liveness and readiness."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers; the bus's state is reported, not required (an
    instance whose bus is down still serves: its consoles read the stored stream)."""
    bus = request.app.state.bus.status
    try:
        async with request.app.state.store.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__,
                             "bus": bus}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "bus": bus})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
