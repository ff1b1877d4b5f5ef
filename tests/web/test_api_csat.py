"""Satisfaction surveys (`domain.csat`, `ingest.survey`) through the real app, on SQLite
and on PostgreSQL: resolve with a survey, the prompt arriving after the closing message
at a fake channel (a real HTTP server), the end user's rating and comment posted as
Smartly webhooks, the window, the refusals, the integration's texts and the reports.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from connector.domain import csat
from connector.storage.db import utcnow
from connector.storage.models import Conversation, StreamEvent, Ticket
from tests import builders
from tests.conftest import Bot, on_each_dialect, signed_in_staff
from tests.fakes import FakeChannel
from tests.helpers import ok, rows

pytestmark = pytest.mark.anyio

_t = Ticket.__table__
_se = StreamEvent.__table__


settings = on_each_dialect()
staff = signed_in_staff(("alice", "agent"), ("sam", "supervisor"), ("root", "admin"))


async def turn(client: httpx.AsyncClient, bot: Bot, user: str, text: str,
               **extra: Any) -> dict[str, Any]:
    r = await client.post(bot.smartly_path, json=builders.turn(user, text, **extra))
    assert r.status_code == 200, r.text
    return r.json()


async def handled(client: httpx.AsyncClient, bot: Bot, agent: httpx.AsyncClient,
                  user: str = "u-1", lang: str = "en-gb") -> int:
    """A handover taken by `agent`, who replied once."""
    tid = (await turn(client, bot, user, "help", need_help=True, lang=lang))["ticket_id"]
    await ok(agent.post(f"/api/tickets/{tid}/claim"))
    await ok(agent.post(f"/api/tickets/{tid}/messages", json={"text": "Done!"}))
    return tid


async def surveyed(client: httpx.AsyncClient, bot: Bot, agent: httpx.AsyncClient,
                   channel: FakeChannel, user: str = "u-1",
                   lang: str = "en-gb") -> tuple[int, dict[str, Any]]:
    """A ticket resolved with a closing message and a survey, once the channel has the
    reply, the closing message and the prompt; returns its id and the prompt."""
    tid = await handled(client, bot, agent, user, lang)
    out = await ok(agent.post(f"/api/tickets/{tid}/resolve",
                              json={"closing_message": "Bye!", "survey": True}))
    assert out["state"] == "resolved" and out["csat"]["sent_at"] is not None
    # A conversation's deliveries arrive in order: the reply, the closing message, the
    # prompt (each test's earlier conversations are settled before the next one starts).
    before = len([r for r in channel.delivered if r.body["recipient"]["id"] != user])
    got = await anyio.to_thread.run_sync(channel.wait_delivered, before + 3)
    mine = [r.body["message"] for r in got if r.body["recipient"]["id"] == user]
    assert mine[:2] == [{"text": "Done!"}, {"text": "Bye!"}]
    return tid, mine[2]


async def tickets_of(app: Any) -> list[dict[str, Any]]:
    return await rows(app, Ticket, order=_t.c.id)


async def test_resolve_with_survey_sends_the_prompt_after_the_closing_message(
        app, client, bot, channel, staff):
    tid, prompt = await surveyed(client, bot, staff["alice"], channel)
    assert prompt == {"text": "How would you rate this conversation?", "quick_replies": [
        {"content_type": "text", "title": f"{n} ★", "payload": f"CSAT_{n}"}
        for n in range(1, 6)]}
    detail = await ok(staff["alice"].get(f"/api/tickets/{tid}"))
    assert detail["csat"]["score"] is None and detail["csat"]["comment"] is None
    last = detail["messages"][-1]  # after "alice closed the ticket"
    assert (last["kind"], last["text"], last["message"]) == ("bot", prompt["text"], prompt)
    assert last["context"] == {"event": "survey"} and "delivery" in last
    (conv,) = await rows(app, Conversation)
    assert conv["survey_ticket_id"] == tid and conv["survey_until"] > utcnow()


async def test_a_rating_is_recorded_opens_no_ticket_and_the_next_message_is_the_comment(
        app, client, bot, channel, staff):
    tid, _ = await surveyed(client, bot, staff["alice"], channel)
    # The bot did not understand "4" and asks for a human: a rating never opens a ticket.
    out = await turn(client, bot, "u-1", "4", need_help=True, answer="Sorry?")
    assert out["ticket_opened"] is False and out["ticket_id"] is None
    assert [t["state"] for t in await tickets_of(app)] == ["resolved"]
    detail = await ok(staff["alice"].get(f"/api/tickets/{tid}"))
    assert detail["state"] == "resolved"
    assert detail["csat"]["score"] == 4 and detail["csat"]["at"] is not None
    assert [m["text"] for m in detail["messages"][-2:]] == ["4", "Sorry?"]
    updates = await rows(app, StreamEvent, _se.c.type == "ticket.updated",
                         _se.c.ticket_id == tid, order=_se.c.id)
    assert updates[-1]["payload"]["ticket"]["csat"]["score"] == 4
    queue = await ok(staff["sam"].get("/api/queue"))
    assert queue["waiting"] == 0, queue

    await turn(client, bot, "u-1", "Quick and kind, thanks")
    detail = await ok(staff["alice"].get(f"/api/tickets/{tid}"))
    assert detail["csat"]["comment"] == "Quick and kind, thanks"
    # Once: a later message is an ordinary turn, and a handover opens a ticket as usual.
    again = await turn(client, bot, "u-1", "one more thing", need_help=True)
    assert again["ticket_opened"] is True
    detail = await ok(staff["alice"].get(f"/api/tickets/{tid}"))
    assert (detail["csat"]["score"], detail["csat"]["comment"]) == (4, "Quick and kind, thanks")


async def test_a_text_that_is_no_rating_is_not_taken_and_the_survey_still_waits(
        app, client, bot, channel, staff):
    tid, _ = await surveyed(client, bot, staff["alice"], channel)
    for text in ("thanks", "45", "4 stars", "0", "6"):
        await turn(client, bot, "u-1", text)
    detail = await ok(staff["alice"].get(f"/api/tickets/{tid}"))
    assert detail["csat"]["score"] is None and detail["csat"]["comment"] is None
    # The quick reply's payload is ours, whatever its title says.
    await turn(client, bot, "u-1", "whatever", payload={"payload": "CSAT_2"})
    assert (await ok(staff["alice"].get(f"/api/tickets/{tid}")))["csat"]["score"] == 2


async def test_an_answer_after_the_window_is_not_recorded(app, client, bot, channel, staff):
    app.state.settings.csat_window_seconds = 0.001
    tid, _ = await surveyed(client, bot, staff["alice"], channel)
    (conv,) = await rows(app, Conversation)
    await anyio.sleep(max(0.0, (conv["survey_until"] - utcnow()).total_seconds()) + 0.002)
    out = await turn(client, bot, "u-1", "5")
    assert out["ticket_opened"] is False
    assert (await ok(staff["alice"].get(f"/api/tickets/{tid}")))["csat"]["score"] is None
    (conv,) = await rows(app, Conversation)
    assert conv["survey_ticket_id"] is None  # cleared on the way


async def test_refusals(app, client, bot, channel, staff):
    queued = (await turn(client, bot, "u-9", "help", need_help=True))["ticket_id"]
    r = await staff["sam"].post(f"/api/tickets/{queued}/resolve", json={"survey": True})
    assert r.status_code == 409 and "abandoned" in r.json()["message"]
    assert [t["state"] for t in await tickets_of(app)] == ["queued"]
    r = await staff["sam"].post(f"/api/tickets/{queued}/resolve", json={"survey": "yes"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "survey"
    done = await handled(client, bot, staff["alice"], "u-8")
    await ok(staff["alice"].post(f"/api/tickets/{done}/resolve", json={}))
    r = await staff["alice"].post(f"/api/tickets/{done}/resolve", json={"survey": True})
    assert r.status_code == 409
    (_, ticket) = await tickets_of(app)
    assert ticket["survey_sent_at"] is None
    assert (await ok(staff["alice"].get(f"/api/tickets/{done}")))["csat"] is None


async def test_the_integrations_question_and_labels(app, client, bot, channel, staff):
    admin = staff["root"]
    for labels, field in ((["a", "b"], "survey_labels"), (["a", "b", "c", "d", "A"],
                                                          "survey_labels.4"),
                          (["a", "b", "c", "d", "x" * 21], "survey_labels.4")):
        r = await admin.patch(f"/api/integrations/{bot.id}", json={"survey_labels": labels})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == field, r.text
    out = await ok(admin.patch(f"/api/integrations/{bot.id}", json={
        "survey_question": "Rate us?", "survey_labels": ["Bad", "Meh", "OK", "Good", "Wow"]}))
    assert (out["survey_question"], out["survey_labels"]) == (
        "Rate us?", ["Bad", "Meh", "OK", "Good", "Wow"])
    tid, prompt = await surveyed(client, bot, staff["alice"], channel)
    assert prompt["text"] == "Rate us?"
    assert [q["title"] for q in prompt["quick_replies"]] == ["Bad", "Meh", "OK", "Good", "Wow"]
    await turn(client, bot, "u-1", " good ")  # a label as written, case aside
    assert (await ok(staff["alice"].get(f"/api/tickets/{tid}")))["csat"]["score"] == 4
    # Back to the defaults: in the ticket's language.
    await ok(admin.patch(f"/api/integrations/{bot.id}",
                         json={"survey_question": None, "survey_labels": None}))
    _, prompt = await surveyed(client, bot, staff["alice"], channel, "u-2", "fr-fr")
    assert prompt["text"] == csat.DEFAULT_QUESTIONS["fr"]


async def test_reports_figures_per_agent_and_integration(app, client, bot, channel, staff):
    scores = {"u-1": "5", "u-2": "3", "u-3": None}
    for user, score in scores.items():
        await surveyed(client, bot, staff["alice"], channel, user)
        if score:
            await turn(client, bot, user, score)
    plain = await handled(client, bot, staff["alice"], "u-4")
    await ok(staff["alice"].post(f"/api/tickets/{plain}/resolve", json={}))
    day = utcnow().date().isoformat()
    expected = {"surveys": 3, "answers": 2, "average": 4.0, "response_rate": 0.667,
                "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}}
    for by, key in (("agent", "alice"), ("integration", bot.id)):
        out = await ok(staff["sam"].get("/api/reports/tickets",
                                        params={"from": day, "to": day, "by": by}))
        (group,) = out["groups"]
        assert group["key"] == key and group["csat"] == expected
        assert out["total"]["csat"] == expected
    r = await staff["sam"].get("/api/reports/tickets.csv", params={"from": day, "to": day})
    lines = [line.split(",") for line in r.text.strip().split("\r\n")]
    assert lines[0][-3:] == ["survey_sent", "csat_score", "csat_comment"]
    assert [row[-2] for row in lines[1:]] == ["5", "3", "", ""]
    assert [bool(row[-3]) for row in lines[1:]] == [True, True, True, False]
