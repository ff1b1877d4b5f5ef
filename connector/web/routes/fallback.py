"""JSON 404 and 405 answers for API paths that no route took.

Without this route the console's static mount at `/` (which matches every
path) would answer an unknown `/api/...` or `/hooks/...` path, or a method a
route does not take, with its own text/plain 404 or 405 (the latter with a
wrong `Allow`). `ApiFallback` is placed after the API routes and before the
console: it takes every API path that reached it and answers like the routes
do, `{"error": ..., "message": ...}`. Other paths pass on to the console.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from connector.web.http import error_response

#: Path prefixes of the JSON API; every other path belongs to the console.
API_PREFIXES = ("/api/", "/hooks/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class ApiFallback(BaseRoute):
    """Answers an API path no route fully matched: 405 with the right `Allow` when
    routes serve the path with other methods, else 404."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and is_api_path(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: object) -> object:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed: set[str] = set()
        for route in scope["router"].routes:
            if isinstance(route, Route) and route.methods:
                match, _ = route.matches(scope)
                if match is not Match.NONE:
                    allowed |= route.methods
        if allowed:
            methods = ", ".join(sorted(allowed))
            response = error_response(
                405, "method_not_allowed",
                f"{scope['method']} is not allowed on {scope['path']}; allowed: {methods}")
            response.headers["Allow"] = methods
        else:
            response = error_response(404, "not_found", f"no such API path: {scope['path']}")
        await response(scope, receive, send)
