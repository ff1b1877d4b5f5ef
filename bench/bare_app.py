"""The ceiling for the ingest benchmark: a bare Starlette app on the connector's server stack.

It answers the same route as the connector's Smartly webhook, reads and parses
the same JSON body with the same parser (stdlib `json`), and answers 202 with a
small JSON body of the connector's response size. Nothing is stored.

Run by `bench/ingest.py`; by hand: `python3 bench/bare_app.py --port 8100`.
It is started with the same `uvicorn.run` options as `connector serve`
(bench/lib/baseline.py, connector/cli.py): default loop and HTTP
implementation (uvloop and httptools when installed), one worker, no access
log, no server header, logging at WARNING.
"""

from __future__ import annotations

import argparse
import json
import sys

from lib.baseline import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def smartly(request: Request) -> Response:
    body = json.loads(await request.body())
    if not isinstance(body, dict):
        return JSONResponse({"error": "invalid"}, status_code=422)
    return JSONResponse({"status": "accepted", "event_id": None, "ticket_id": None,
                         "ticket_opened": False}, status_code=202)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[
    Route("/hooks/smartly/{integration_id}", smartly, methods=["POST"]),
    Route("/healthz", healthz),
])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    serve(app, args.host, args.port, args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
