"""Middleware: the two hot paths go straight to their endpoints.

Every bot turn is a webhook POST, and every live event is a message on every
console's socket. `FastLanes`, placed after the access log and security
headers, takes both past the exception middleware and the router, which cost
more per request (and per message sent: each wraps `send`) than the endpoint
itself. Anything else (another method, another path) goes the usual way, so
404, 405 and the routes' other behaviour are unchanged. Errors still reach
the app's outermost error handler.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from connector.web.routes import ws
from connector.web.routes.hooks import Webhook

_HOOKS = "/hooks/"


class FastLanes:
    """`webhooks`: the app's webhook endpoints by path segment (`hooks.webhooks`); a POST
    to `/hooks/<segment>/<integration id>` goes to its segment's endpoint."""

    def __init__(self, app: ASGIApp, webhooks: Mapping[str, Webhook]) -> None:
        self.app = app
        self.webhooks = webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_HOOKS):
                segment, _, integration_id = path[len(_HOOKS):].partition("/")
                endpoint = self.webhooks.get(segment)
                if endpoint is not None and integration_id and "/" not in integration_id:
                    scope["path_params"] = {"integration_id": integration_id}
                    await endpoint(scope, receive, send)
                    return
        elif kind == "websocket" and scope["path"] == ws.PATH:
            await ws.stream(scope, receive, send)
            return
        await self.app(scope, receive, send)
