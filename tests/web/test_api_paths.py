"""Unknown API paths and methods: JSON 404 and 405 like every other API error, while
the console keeps its static pages at other paths."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


def assert_json_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == code and body["message"], body


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/tickets/abc"),          # routes take integer ids only
    ("POST", "/api/tickets/-1/claim"),
    ("PATCH", "/api/users/me"),
    ("GET", "/api/no-such-thing"),
    ("GET", "/api/tickets/"),
    ("POST", "/hooks/smartly/abc/extra"),
    ("GET", "/hooks/nowhere"),
])
async def test_unknown_api_paths_answer_json_404(client, method, path):
    assert_json_error(await client.request(method, path), 404, "not_found")


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "/api/users", "GET, HEAD, POST"),   # two routes share the path
    ("PUT", "/api/tickets/1", "GET, HEAD, PATCH"),
    ("GET", "/api/tickets/1/claim", "POST"),
    ("OPTIONS", "/api/integrations/x", "DELETE, GET, HEAD, PATCH"),
    ("GET", "/api/login", "POST"),
    ("GET", "/hooks/smartly/some-id", "POST"),
])
async def test_wrong_method_on_an_api_path_answers_json_405_with_allow(
        client, method, path, allow):
    r = await client.request(method, path)
    assert_json_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


async def test_the_console_keeps_its_static_pages_and_plain_404(client):
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    r = await client.get("/no-such-page.html")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
