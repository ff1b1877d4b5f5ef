"""`GET /api/openapi.json`: an OpenAPI 3.1 description of the agent API.

Request bodies come from the same pydantic models the routes validate with,
so the description cannot drift from what is enforced.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connector.routes import schemas

_ERR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}

# (method, path, summary, roles, body model, success status)
ENDPOINTS: list[tuple[str, str, str, str, type[BaseModel] | None, int]] = [
    ("post", "/api/login", "Sign in; sets the session cookie", "anyone", schemas.LoginIn, 200),
    ("post", "/api/logout", "End this session and close its sockets", "any role", None, 200),
    ("get", "/api/session", "Current user, CSRF token and stream cursor", "any role", None, 200),
    ("get", "/api/tickets", "List tickets (agents: queue and own)", "any role", None, 200),
    ("get", "/api/tickets/{id}", "A ticket with its whole transcript", "any role", None, 200),
    ("post", "/api/tickets/{id}/claim", "Claim a queued ticket (409 if taken)", "any role",
     None, 200),
    ("post", "/api/tickets/{id}/messages", "Reply to the end user (assignee only)", "any role",
     schemas.TextIn, 201),
    ("post", "/api/tickets/{id}/notes", "Internal note, never delivered", "any role",
     schemas.TextIn, 201),
    ("post", "/api/tickets/{id}/transfer", "Transfer to a user, or to the queue with null",
     "assignee, supervisor, admin", schemas.TransferIn, 200),
    ("post", "/api/tickets/{id}/resolve", "Resolve, with an optional closing message",
     "assignee, supervisor, admin", schemas.ResolveIn, 200),
    ("post", "/api/messages/{id}/resend", "Re-send a failed delivery",
     "assignee, supervisor, admin", None, 200),
    ("get", "/api/queue", "Waiting count, oldest wait, load per agent, agents online",
     "supervisor, admin", None, 200),
    ("get", "/api/queue/history", "Queue length and waits per bucket over the last hours",
     "supervisor, admin", None, 200),
    ("get", "/api/agents", "Colleagues with their load and presence", "any role", None, 200),
    ("get", "/api/integrations", "List integrations", "admin", None, 200),
    ("post", "/api/integrations", "Create; the Smartly URL with its key is shown once", "admin",
     schemas.IntegrationIn, 201),
    ("get", "/api/integrations/{id}", "One integration", "admin", None, 200),
    ("patch", "/api/integrations/{id}", "Set name, channel URL or verify token", "admin",
     schemas.IntegrationPatch, 200),
    ("post", "/api/integrations/{id}/rotate-key",
     "New key; the old one keeps working for the grace period", "admin", schemas.RotateIn, 200),
    ("get", "/api/integrations/{id}/deliveries", "Recent deliveries with status codes",
     "admin", None, 200),
    ("post", "/api/integrations/{id}/test", "Send a test message to the channel", "admin",
     schemas.TestMessageIn, 200),
    ("get", "/api/users", "List users", "admin", None, 200),
    ("post", "/api/users", "Create a user", "admin", schemas.UserIn, 201),
    ("patch", "/api/users/{id}", "Change role, disable, or reset the password", "admin",
     schemas.UserPatch, 200),
]


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": {
        "type": "object", "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                       "fields": {"type": "array", "items": {
                           "type": "object", "properties": {
                               "field": {"type": "string"}, "message": {"type": "string"}}}}}}}
    for method, path, summary, roles, model, status in ENDPOINTS:
        op: dict[str, Any] = {
            "summary": summary, "description": f"Roles: {roles}.",
            "responses": {str(status): {"description": "success"}, "401": _ERR, "403": _ERR,
                          "404": _ERR, "409": _ERR, "422": _ERR, "429": _ERR},
        }
        if "{id}" in path:
            op["parameters"] = [{"name": "id", "in": "path", "required": True,
                                 "schema": {"type": "string"}}]
        if model is not None:
            components[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}")
            op["requestBody"] = {"required": model is not schemas.RotateIn, "content": {
                "application/json": {"schema": {
                    "$ref": f"#/components/schemas/{model.__name__}"}}}}
        if method != "get" and path != "/api/login":
            op["parameters"] = [*op.get("parameters", []), {
                "name": "X-CSRF-Token", "in": "header", "required": True,
                "schema": {"type": "string"}}]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Handover connector agent API", "version": "1"},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"session": {
            "type": "apiKey", "in": "cookie", "name": "connector_session"}}},
        "security": [{"session": []}],
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build())


routes = [Route("/api/openapi.json", openapi, methods=["GET"])]
