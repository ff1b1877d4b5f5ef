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
        "$ref": "#/components/schemas/ReplyIn"}
    reply_in = schemas["ReplyIn"]  # text or a rich message, exactly one
    assert set(reply_in["properties"]) == {"text", "message"}
    assert (reply_in["minProperties"], reply_in["maxProperties"]) == (1, 1)
    note = spec["paths"]["/api/tickets/{id}/notes"]["post"]
    assert note["requestBody"]["content"]["application/json"]["schema"] == {
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


async def test_openapi_path_ids_have_the_type_the_route_takes(app, client):
    """`{id:int}` routes match digits only (anything else is a 404): the id is an integer."""
    spec = (await client.get("/api/openapi.json")).json()
    served = {route.path.replace(":int}", "}"): route.path for route in app.routes
              if isinstance(route, Route)}
    checked = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                if p["in"] != "path":
                    continue
                wanted = "integer" if f"{{{p['name']}:int}}" in served[path] else "string"
                assert p["schema"]["type"] == wanted, (method, path, p)
                checked += wanted == "integer"
    assert checked >= 8  # tickets, messages and users


async def test_openapi_describes_every_answer_with_its_json_schema(client):
    spec = (await client.get("/api/openapi.json")).json()
    error = {"$ref": "#/components/schemas/Error"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = (method, path)
            answers = op["responses"]
            ok = [s for s in answers if s.startswith("2")]
            assert len(ok) == 1, where
            (content,) = answers[ok[0]]["content"].values()  # JSON, or the CSV report
            schema = content["schema"]
            assert schema["$ref"].startswith("#/components/schemas/"), where
            assert schema["$ref"].rsplit("/", 1)[1] in spec["components"]["schemas"], where
            for status, answer in answers.items():
                if not status.startswith("2"):
                    assert answer["content"]["application/json"]["schema"] == error, where
            assert "401" in answers, where
            if "requestBody" in op:  # a body can be malformed, too large or invalid
                assert {"400", "413", "422"} <= set(answers), where
            if "{id}" in path:
                assert "404" in answers, where
            if method != "get":
                assert "403" in answers, where  # CSRF; sign-in: a cross-origin request
    login = spec["paths"]["/api/login"]["post"]
    assert {"401", "429"} <= set(login["responses"]) and login["security"] == []
    assert "Retry-After" in login["responses"]["429"]["headers"]
    claim = spec["paths"]["/api/tickets/{id}/claim"]["post"]["responses"]
    assert claim["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Ticket"}
    assert "409" in claim
    # Any path answers 405 with Allow for a method it does not take, in the same JSON.
    not_allowed = spec["components"]["responses"]["MethodNotAllowed"]
    assert not_allowed["content"]["application/json"]["schema"] == error
    assert not_allowed["headers"]["Allow"]["required"] is True


async def test_openapi_answer_schemas_are_closed_and_list_their_fields(client):
    spec = (await client.get("/api/openapi.json")).json()
    ticket = spec["components"]["schemas"]["Ticket"]
    assert ticket["additionalProperties"] is False
    assert {"id", "state", "assignee", "opened_at", "wait_seconds"} <= set(ticket["required"])
    assert ticket["properties"]["opened_at"]["format"] == "date-time"
    detail = spec["components"]["schemas"]["TicketDetail"]
    assert {"messages", "transitions"} <= set(detail["required"])
    message = spec["components"]["schemas"]["Message"]
    assert "delivery" in message["properties"] and "delivery" not in message["required"]
