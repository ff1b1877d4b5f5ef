"""Ticket reports through the real app, on SQLite and on PostgreSQL: the CSV checked cell
by cell, the figures per day, agent, integration and category, roles and refusals.

Tickets are handed over by real Smartly webhooks and worked through the real API
(claim, reply, resolve); the re-queue of a silent agent's ticket and the resolution of
an inactive one are `connector.domain.assignment`'s, run through the store. Their
times are then set to fixed instants, so that every duration is known exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connector.domain import assignment, ticket_reports
from connector.storage.models import Ticket
from tests import builders
from tests.conftest import on_each_dialect, signed_in_staff
from tests.helpers import execute, ok, rows

pytestmark = pytest.mark.anyio

_t = Ticket.__table__
UTC = dt.UTC
DAY1, DAY2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
RANGE = {"from": "2025-03-01", "to": "2025-03-02"}
NASTY_USER = 'a,b "c"\r\nd'  # a comma, quotes and a line break in one end user id
FORMULA = '=HYPERLINK("http://evil.example","click")'
NO_CSAT = {"surveys": 0, "answers": 0, "average": None, "response_rate": None,
           "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}}


settings = on_each_dialect()
staff = signed_in_staff(("alice", "agent"), ("bob", "agent"), ("sam", "supervisor"),
                        ("root", "admin"))


def at(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm, ss), UTC)


async def hand_over(client: httpx.AsyncClient, bot: Any, user: str, category: str = "",
                    lang: str = "fr-fr") -> int:
    r = await client.post(bot.smartly_path, json=builders.turn(
        user, "help", need_help=True, handover_category_name=category, lang=lang))
    assert r.status_code == 200, r.text
    assert r.json()["ticket_opened"] is True
    return r.json()["ticket_id"]


async def set_times(app: Any, tid: int, opened: dt.datetime, claimed: float | None = None,
                    first: float | None = None, resolved: float | None = None) -> None:
    """Opened at `opened`; the rest so many seconds after it (None: unchanged)."""
    values: dict[str, Any] = {"opened_at": opened}
    for column, after in (("claimed_at", claimed), ("first_response_at", first),
                          ("resolved_at", resolved)):
        if after is not None:
            values[column] = opened + dt.timedelta(seconds=after)
    await execute(app, sa.update(_t).where(_t.c.id == tid).values(**values))


async def version(app: Any, tid: int) -> int:
    (row,) = await rows(app, Ticket, _t.c.id == tid)
    return row["version"]


async def world(app: Any, client: httpx.AsyncClient, bot: Any,
                staff: dict[str, httpx.AsyncClient]) -> dict[str, int]:
    """Seven handovers: five in the range (resolved, open, never taken, re-queued from a
    silent agent, auto-resolved) and one just before and one just after it."""
    alice, bob = staff["alice"], staff["bob"]
    ids = {}
    ids["done"] = await hand_over(client, bot, "u-1", "billing")
    await ok(alice.post(f"/api/tickets/{ids['done']}/claim"))
    await ok(alice.post(f"/api/tickets/{ids['done']}/messages", json={"text": "hello"}))
    await ok(alice.post(f"/api/tickets/{ids['done']}/resolve", json={}))

    ids["open"] = await hand_over(client, bot, NASTY_USER, FORMULA, lang="en-gb")
    await ok(bob.post(f"/api/tickets/{ids['open']}/claim"))
    await ok(bob.post(f"/api/tickets/{ids['open']}/messages", json={"text": "hi"}))

    ids["queued"] = await hand_over(client, bot, "@SUM(1+1)", "+cmd", lang="")

    ids["requeued"] = await hand_over(client, bot, "-2+3", "\tTabbed")
    alice_id = (await ok(alice.get("/api/me")))["id"]
    await ok(alice.post(f"/api/tickets/{ids['requeued']}/claim"))
    assert await app.state.store.write(
        assignment.requeue_silent_sync, ids["requeued"], alice_id,
        await version(app, ids["requeued"]), dt.timedelta(minutes=3)) is not None

    ids["auto"] = await hand_over(client, bot, "u-5", "billing")
    await ok(bob.post(f"/api/tickets/{ids['auto']}/claim"))
    await ok(bob.post(f"/api/tickets/{ids['auto']}/messages", json={"text": "there?"}))
    assert await app.state.store.write(
        assignment.resolve_inactive_sync, ids["auto"],
        await version(app, ids["auto"])) is not None

    ids["before"] = await hand_over(client, bot, "u-before")
    ids["after"] = await hand_over(client, bot, "u-after")

    await set_times(app, ids["done"], at(DAY1, 10), claimed=60, first=90, resolved=600)
    await set_times(app, ids["open"], at(DAY1, 11), claimed=30, first=45)
    await set_times(app, ids["queued"], at(DAY2, 23, 59, 59))
    await set_times(app, ids["requeued"], at(DAY2, 9), claimed=120)
    await set_times(app, ids["auto"], at(DAY2, 12), claimed=10, first=20, resolved=3600)
    await set_times(app, ids["before"], at(DAY1, 0) - dt.timedelta(seconds=1))
    await set_times(app, ids["after"], at(DAY2 + dt.timedelta(days=1), 0))
    return ids


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def steady(table: list[list[str]]) -> list[list[str]]:
    """The rows without the wait of tickets still waiting (it runs to now)."""
    return [[*row[:9], "waiting", *row[10:]] if row[6:9] == ["", "", ""] else row
            for row in table]


async def test_the_csv_cell_by_cell(app, client, bot, staff):
    ids = await world(app, client, bot, staff)
    r = await staff["sam"].get("/api/reports/tickets.csv", params=RANGE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == (
        'attachment; filename="tickets-2025-03-01-to-2025-03-02.csv"')
    assert r.headers["cache-control"] == "no-store"
    assert r.text.endswith("\r\n") and "\r\n" in r.text  # RFC 4180 line ends
    table = parse_csv(r.text)
    assert table[0] == ["id", "integration", "end_user", "category", "language", "opened",
                        "assigned", "first_response", "resolved", "wait_seconds",
                        "first_response_seconds", "handling_seconds", "requeues", "agent",
                        "survey_sent", "csat_score", "csat_comment"]
    body = table[1:]
    assert [int(row[0]) for row in body] == [
        ids["done"], ids["open"], ids["queued"], ids["requeued"], ids["auto"]]
    done, open_, queued, requeued, auto = body
    assert done == [str(ids["done"]), bot.id, "u-1", "billing", "fr-fr",
                    "2025-03-01T10:00:00Z", "2025-03-01T10:01:00Z", "2025-03-01T10:01:30Z",
                    "2025-03-01T10:10:00Z", "60.0", "90.0", "540.0", "0", "alice", "", "", ""]
    # quoted by the writer, read back whole; the formula defused with an apostrophe
    assert open_ == [str(ids["open"]), bot.id, NASTY_USER, "'" + FORMULA, "en-gb",
                     "2025-03-01T11:00:00Z", "2025-03-01T11:00:30Z", "2025-03-01T11:00:45Z",
                     "", "30.0", "45.0", "", "0", "bob", "", "", ""]
    assert f'"{NASTY_USER.replace(chr(34), chr(34) * 2)}"' in r.text
    # still waiting: the wait runs to now; nobody ever took it
    assert queued[:9] == [str(ids["queued"]), bot.id, "'@SUM(1+1)", "'+cmd", "",
                          "2025-03-02T23:59:59Z", "", "", ""]
    assert float(queued[9]) > 3600 * 24 * 30
    assert queued[10:] == ["", "", "0", "", "", "", ""]
    # taken back from silent alice and waiting again: wait until the first assignment,
    # re-queued once, alice was the last to hold it
    assert requeued == [str(ids["requeued"]), bot.id, "'-2+3", "'\tTabbed", "fr-fr",
                        "2025-03-02T09:00:00Z", "2025-03-02T09:02:00Z", "", "", "120.0",
                        "", "", "1", "alice", "", "", ""]
    assert auto == [str(ids["auto"]), bot.id, "u-5", "billing", "fr-fr",
                    "2025-03-02T12:00:00Z", "2025-03-02T12:00:10Z", "2025-03-02T12:00:20Z",
                    "2025-03-02T13:00:00Z", "10.0", "20.0", "3590.0", "0", "bob", "", "", ""]
    # the admin reads the same; one day alone holds that day's handovers
    same = await staff["root"].get("/api/reports/tickets.csv", params=RANGE)
    assert same.status_code == 200 and steady(parse_csv(same.text)[1:]) == steady(body)
    day1 = await staff["sam"].get("/api/reports/tickets.csv",
                                  params={"from": "2025-03-01", "to": "2025-03-01"})
    assert [int(row[0]) for row in parse_csv(day1.text)[1:]] == [ids["done"], ids["open"]]
    assert 'filename="tickets-2025-03-01-to-2025-03-01.csv"' in day1.headers[
        "content-disposition"]
    empty = await staff["sam"].get("/api/reports/tickets.csv",
                                   params={"from": "2020-01-01", "to": "2020-01-31"})
    assert parse_csv(empty.text) == [table[0]]


async def test_the_csv_comes_in_chunks_of_tickets(app, client, bot, staff, monkeypatch):
    ids = await world(app, client, bot, staff)
    whole = steady(parse_csv(
        (await staff["sam"].get("/api/reports/tickets.csv", params=RANGE)).text))
    monkeypatch.setattr(ticket_reports, "CHUNK", 2)
    reads = 0
    real = ticket_reports._chunk

    async def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real(*args)

    monkeypatch.setattr(ticket_reports, "_chunk", counted)
    async with staff["sam"].stream("GET", "/api/reports/tickets.csv", params=RANGE) as r:
        assert r.status_code == 200
        pieces = [piece async for piece in r.aiter_text()]
    assert steady(parse_csv("".join(pieces))) == whole
    assert reads == 3  # 2 + 2 + 1 tickets, one read each
    assert [int(row[0]) for row in whole[1:]] == [
        ids[k] for k in ("done", "open", "queued", "requeued", "auto")]


async def test_the_figures_by_day_agent_integration_and_category(app, client, bot, staff):
    await world(app, client, bot, staff)
    sam = staff["sam"]

    async def report(by: str) -> dict[str, Any]:
        r = await sam.get("/api/reports/tickets", params={**RANGE, "by": by})
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["from"], out["to"], out["by"]) == ("2025-03-01", "2025-03-02", by)
        return out

    by_day = await report("day")
    day1, day2 = by_day["groups"]
    assert day1 == {"key": "2025-03-01", "label": "2025-03-01", "handovers": 2,
                    "wait_median_seconds": 45.0, "wait_p90_seconds": 57.0,
                    "first_response_median_seconds": 67.5,
                    "first_response_p90_seconds": 85.5, "handling_median_seconds": 540.0,
                    "requeues": 0, "auto_resolved": 0, "csat": NO_CSAT}
    # waits 10, 120 and the one still waiting (over a month): the median is 120
    assert day2["key"] == "2025-03-02" and day2["handovers"] == 3
    assert day2["wait_median_seconds"] == 120.0 and day2["wait_p90_seconds"] > 3600 * 24 * 20
    assert (day2["first_response_median_seconds"], day2["first_response_p90_seconds"],
            day2["handling_median_seconds"]) == (20.0, 20.0, 3590.0)
    assert (day2["requeues"], day2["auto_resolved"]) == (1, 1)
    total = by_day["total"]
    assert (total["key"], total["handovers"], total["requeues"], total["auto_resolved"]) == (
        None, 5, 1, 1)
    assert total["wait_median_seconds"] == 60.0  # 10, 30, 60, 120, (waiting)
    assert total["first_response_median_seconds"] == 45.0  # 20, 45, 90
    assert total["handling_median_seconds"] == 2065.0  # 540, 3590

    by_agent = await report("agent")
    assert [(g["key"], g["label"], g["handovers"]) for g in by_agent["groups"]] == [
        ("alice", "alice", 2), ("bob", "bob", 2), (None, "unassigned", 1)]
    alice, bob, _ = by_agent["groups"]
    assert (alice["requeues"], alice["auto_resolved"], alice["wait_median_seconds"]) == (
        1, 0, 90.0)
    assert (bob["requeues"], bob["auto_resolved"], bob["handling_median_seconds"]) == (
        0, 1, 3590.0)

    by_integration = await report("integration")
    assert [(g["key"], g["label"], g["handovers"]) for g in by_integration["groups"]] == [
        (bot.id, "bot", 5)]

    by_category = await report("category")
    groups = {g["key"]: g for g in by_category["groups"]}
    assert by_category["groups"][0]["key"] == "billing"  # most handovers first
    assert {k: g["handovers"] for k, g in groups.items()} == {
        "billing": 2, FORMULA: 1, "+cmd": 1, "\tTabbed": 1}
    assert groups["billing"]["auto_resolved"] == 1
    default = (await sam.get("/api/reports/tickets", params=RANGE)).json()  # by=day
    assert default["by"] == "day" and default["groups"][0] == day1

    # every day of a range is listed, empty ones too
    week = (await sam.get("/api/reports/tickets",
                          params={"from": "2025-02-27", "to": "2025-03-05"})).json()
    assert [(g["key"], g["handovers"]) for g in week["groups"]] == [
        ("2025-02-27", 0), ("2025-02-28", 1), ("2025-03-01", 2), ("2025-03-02", 3),
        ("2025-03-03", 1), ("2025-03-04", 0), ("2025-03-05", 0)]
    assert week["groups"][0]["wait_median_seconds"] is None


async def test_reports_are_for_supervisors_and_admins(app, client, staff):
    for path in ("/api/reports/tickets.csv", "/api/reports/tickets"):
        assert (await client.get(path, params=RANGE)).status_code == 401
        r = await staff["alice"].get(path, params=RANGE)
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
        for name in ("sam", "root"):
            assert (await staff[name].get(path, params=RANGE)).status_code == 200


BAD = [
    ({"to": "2025-03-02"}, "from", "required"),
    ({"from": "2025-03-01"}, "to", "required"),
    ({"from": "", "to": "2025-03-02"}, "from", "required"),
    ({"from": "2025-3-1", "to": "2025-03-02"}, "from", "YYYY-MM-DD"),
    ({"from": "20250301", "to": "2025-03-02"}, "from", "YYYY-MM-DD"),
    ({"from": "2025-03-01", "to": "2025-02-30"}, "to", "no such date"),
    ({"from": "2025-03-01T00:00", "to": "2025-03-02"}, "from", "YYYY-MM-DD"),
    ({"from": "٢٠٢٥-03-01", "to": "2025-03-02"}, "from", "YYYY-MM-DD"),
    ({"from": "2025-03-02", "to": "2025-03-01"}, "to", "on or after from"),
    ({"from": "2024-01-01", "to": "2025-01-01"}, "to", "366 days"),  # 367 days
    ({"from": "9998-12-31", "to": "9999-12-31"}, "to", "9998-12-31"),
]


@pytest.mark.parametrize("path", ["/api/reports/tickets.csv", "/api/reports/tickets"])
async def test_a_bad_range_is_refused_naming_the_parameter(app, staff, path):
    sam = staff["sam"]
    for params, field, says in BAD:
        r = await sam.get(path, params=params)
        assert r.status_code == 422, (params, r.text)
        body = r.json()
        assert body["error"] == "invalid"
        assert [f["field"] for f in body["fields"]] == [field], (params, body)
        assert body["message"].startswith(f"{field}: ") and says in body["message"], body
    # 366 days (2024 is a leap year) is the longest range
    assert (await sam.get(path, params={"from": "2024-01-01", "to": "2024-12-31"})
            ).status_code == 200
    if path.endswith("/tickets"):
        r = await sam.get(path, params={**RANGE, "by": "week"})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "by"


async def test_a_label_narrows_the_csv_and_the_figures(app, client, bot, staff):
    ids = await world(app, client, bot, staff)
    sam = staff["sam"]
    for tid in (ids["done"], ids["auto"]):
        r = await sam.patch(f"/api/tickets/{tid}", json={"labels": ["VIP", "refund"]})
        assert r.status_code == 200, r.text
    r = await sam.get("/api/reports/tickets.csv", params={**RANGE, "label": "vip"})
    assert r.status_code == 200, r.text
    assert [row[0] for row in parse_csv(r.text)[1:]] == [str(ids["done"]), str(ids["auto"])]
    figures = await ok(sam.get("/api/reports/tickets", params={**RANGE, "label": " VIP "}))
    assert figures["total"]["handovers"] == 2
    nobody = await ok(sam.get("/api/reports/tickets", params={**RANGE, "label": "nobody"}))
    assert nobody["total"]["handovers"] == 0
    r = await sam.get("/api/reports/tickets", params={**RANGE, "label": "  "})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "label"
