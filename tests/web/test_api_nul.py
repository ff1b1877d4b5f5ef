"""A NUL character in any string of an API request body is refused: 422 naming the
field, as /api/openapi.json says. PostgreSQL text cannot hold one, so each of these
was a 500 there (and stored, or looked up, on SQLite)."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from tests import builders
from tests.conftest import PASSWORD, add_user, sign_in

pytestmark = pytest.mark.anyio


async def test_a_nul_in_any_request_string_is_a_422_naming_the_field(app, client, bot):
    await add_user(app, "root", "admin")
    r = await client.post("/api/login", json={"username": "ro\x00ot", "password": PASSWORD})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "username", r.text
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", need_help=True))
    assert r.status_code == 200, r.text
    async with AsyncExitStack() as stack:
        admin = await sign_in(stack, app, "root")
        ticket = (await admin.get("/api/tickets")).json()["tickets"][0]["id"]
        for path, body, field in (
            ("/api/integrations", {"name": "a\x00b", "channel_url": "https://x.test/"}, "name"),
            ("/api/integrations", {"name": "b", "channel_url": "https://x.test/",
                                   "verify_token": "t\x00"}, "verify_token"),
            (f"/api/integrations/{bot.id}/test", {"recipient": "u\x00", "text": "t"},
             "recipient"),
            ("/api/users", {"username": "bob", "role": "agent", "password": "long\x00enough"},
             "password"),
            (f"/api/tickets/{ticket}/transfer", {"to": "x\x00"}, "to"),
            (f"/api/tickets/{ticket}/resolve", {"closing_message": "bye\x00"},
             "closing_message"),
        ):
            r = await admin.post(path, json=body)
            assert r.status_code == 422, (path, body, r.text)
            assert [f["field"] for f in r.json()["fields"]] == [field], (path, r.text)
        r = await admin.patch(f"/api/integrations/{bot.id}", json={"name": "x\x00"})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "name", r.text
        assert (await admin.get(f"/api/tickets/{ticket}")).json()["state"] == "queued"
