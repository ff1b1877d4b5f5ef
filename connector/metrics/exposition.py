"""Serving the metrics: `/metrics` on the app behind a bearer token, and the loopback
listener of `CONNECTOR_METRICS_PORT`.

`/metrics` answers 404 while `CONNECTOR_METRICS_TOKEN` is unset (nothing says
metrics exist), 401 for a missing or wrong `Authorization: Bearer` token (compared
in constant time), else the text exposition format. The listener answers
`GET /metrics` with no token: it is bound to 127.0.0.1 only, for a scraper or
an agent on the same host; it speaks just enough HTTP/1.1 for that (one request
per connection), so that it needs neither a second server nor a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from prometheus_client import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.accounts.security import tokens_equal
from connector.web.http import error_response

log = logging.getLogger("connector.metrics")

PATH = "/metrics"
#: The classic text format (every Prometheus reads it; our names are plain ASCII).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The listener's limits on one request: its head's size, and the time it may take.
HEAD_MAX_BYTES = 8192
HEAD_TIMEOUT_SECONDS = 5.0


async def render(state: Any) -> bytes:
    """The exposition of the app whose `app.state` is `state`."""
    await state.metrics_cluster.refresh()
    return generate_latest(state.metrics.registry)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def endpoint(request: Request) -> Response:
    expected = request.app.state.settings.metrics_token
    if expected is None:
        return error_response(404, "not_found", "not found")
    given = _bearer(request)
    if given is None or not tokens_equal(given, expected):
        response = error_response(401, "unauthorized",
                                  "Authorization: Bearer <CONNECTOR_METRICS_TOKEN> required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return Response(await render(request.app.state), media_type=CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})


routes = [Route(PATH, endpoint, methods=["GET"])]


class Listener:
    """`GET /metrics` without a token on 127.0.0.1:`port`, in the app's event loop."""

    HOST = "127.0.0.1"

    def __init__(self, state: Any, port: int) -> None:
        self.state = state
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.HOST, self.port,
                                                      limit=HEAD_MAX_BYTES)
        except OSError as exc:
            raise OSError(f"CONNECTOR_METRICS_PORT: cannot listen on {self.HOST}:{self.port} "
                          f"({exc.strerror or exc})") from None
        log.info("metrics on http://%s:%d%s", self.HOST, self.port, PATH)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on."""
        assert self._server is not None
        return self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
            status, body, kind = await self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            status, body, kind = 400, b"bad request\n", "text/plain; charset=utf-8"
        except Exception:
            log.exception("metrics: answering a scrape failed")
            status, body, kind = 500, b"internal error\n", "text/plain; charset=utf-8"
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  500: "Internal Server Error"}[status]
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                         b"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                         % (status, reason.encode(), kind.encode(), len(body)) + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()

    async def _answer(self, head: bytes) -> tuple[int, bytes, str]:
        method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
        target = rest.partition(b" ")[0].partition(b"?")[0]
        if target != PATH.encode():
            return 404, b"not found\n", "text/plain; charset=utf-8"
        if method != b"GET":
            return 405, b"method not allowed\n", "text/plain; charset=utf-8"
        return 200, await render(self.state), CONTENT_TYPE
