"""A whole handover through the engine: escalation in, reply out through the channel."""

from __future__ import annotations

import anyio
import pytest

from connector.domain import tickets
from tests import builders
from tests.conftest import add_user

pytestmark = pytest.mark.anyio


async def test_escalation_reply_reaches_channel(app, client, bot, channel):
    r = await client.post(bot.smartly_path, json=builders.turn("u-42", "aide", need_help=True))
    assert r.status_code == 200, r.text
    ticket_id = r.json()["ticket_id"]
    agent = await add_user(app, "alice")
    actor = tickets.Actor(agent.id, agent.username, agent.role)
    async with app.state.store.transaction() as tx:
        await tickets.claim(tx, ticket_id, actor)
    async with app.state.store.transaction() as tx:
        await tickets.reply(tx, ticket_id, actor, "Bonjour, je suis là")
    got = await anyio.to_thread.run_sync(channel.wait_delivered, 1)
    assert got[0].body == {"recipient": {"id": "u-42"}, "verifyToken": bot.verify_token,
                           "message": {"text": "Bonjour, je suis là"}}
    assert len(got[0].headers["idempotency-key"]) == 32
