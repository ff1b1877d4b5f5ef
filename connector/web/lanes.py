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

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from connector.web.routes import hooks, ws

_WEBHOOK = re.compile(r"/hooks/(smartly|chatlayer)/([^/]+)")


class FastLanes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["method"] == "POST":
            match = _WEBHOOK.fullmatch(scope["path"])
            if match is not None:
                scope["path_params"] = {"integration_id": match[2]}
                endpoint = hooks.smartly_app if match[1] == "smartly" else hooks.chatlayer_app
                await endpoint(scope, receive, send)
                return
        elif kind == "websocket" and scope["path"] == ws.PATH:
            await ws.stream(scope, receive, send)
            return
        await self.app(scope, receive, send)
