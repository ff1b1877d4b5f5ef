"""`/api/openapi.json`: a valid OpenAPI 3.1 description of every API route the app serves."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

pytestmark = pytest.mark.anyio


def served_api_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every HTTP route under /api/ registered in the app."""
    out = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/") and route.methods:
            path = route.path.replace(":int}", "}")
            out |= {(m.lower(), path) for m in route.methods if m != "HEAD"}
    return out


async def test_openapi_is_valid_3_1(client):
    r = await client.get("/api/openapi.json")  # public: no session needed
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any schema violation


async def test_openapi_lists_every_api_route_the_app_serves(app, client):
    spec = (await client.get("/api/openapi.json")).json()
    described = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    served = served_api_routes(app) - {("get", "/api/openapi.json")}
    assert len(served) >= 20
    assert described == served, {"undocumented": served - described,
                                 "not served": described - served}


async def test_openapi_request_bodies_match_what_is_enforced(client):
    spec = (await client.get("/api/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    text_in = schemas["TextIn"]
    assert text_in["required"] == ["text"]
    assert text_in["properties"]["text"]["maxLength"] == 4000
    assert text_in["properties"]["text"]["minLength"] == 1
    assert text_in["additionalProperties"] is False  # unknown fields are refused
    reply = spec["paths"]["/api/tickets/{id}/messages"]["post"]
    assert reply["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TextIn"}
    assert "201" in reply["responses"] and "422" in reply["responses"]
    # State-changing operations declare the CSRF header; reads and sign-in do not.
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            headers = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
            wants = method != "get" and path != "/api/login"
            assert ("X-CSRF-Token" in headers) == wants, (method, path)
            if "{id}" in path:
                assert any(p["in"] == "path" and p["name"] == "id"
                           for p in op["parameters"]), (method, path)
    assert spec["components"]["securitySchemes"]["session"] == {
        "type": "apiKey", "in": "cookie", "name": "connector_session"}
