"""The rules of a label (`connector.domain.labels`), and the labels in a ticket's summary."""

from __future__ import annotations

from typing import Any

import pytest

from connector.domain import labels, tickets
from connector.domain.errors import FieldError, Forbidden
from tests import builders
from tests.conftest import add_user
from tests.helpers import actor


def test_a_label_is_trimmed_and_lower_cased():
    assert labels.check("  Billing Issue ") == "billing issue"
    assert labels.check("x" * 50) == "x" * 50
    assert labels.check("Café") == "café"


@pytest.mark.parametrize("raw", ["", "   ", "x" * 51, "a\tb", "a\x1fb", "a\x00b", 3, None])
def test_a_bad_label_is_refused_naming_the_field(raw: Any):
    with pytest.raises(FieldError) as caught:
        labels.check(raw, "labels.2")
    assert caught.value.field == "labels.2"


def test_a_set_merges_case_insensitive_duplicates_in_order():
    assert labels.check_set(["VIP", "billing", "vip ", "Billing"]) == ["vip", "billing"]
    assert labels.check_set([]) == []
    assert len(labels.check_set([f"l{n}" for n in range(20)] + ["L0"])) == 20
    with pytest.raises(FieldError) as caught:
        labels.check_set([f"l{n}" for n in range(21)])
    assert caught.value.field == "labels"
    with pytest.raises(FieldError) as caught:
        labels.check_set(["ok", ""])
    assert caught.value.field == "labels.1"
    with pytest.raises(FieldError):
        labels.check_set("ok")


def test_the_summary_reads_the_labels_column():
    base = {"labels_text": None}
    assert tickets.labels_of(base) == []
    assert tickets.labels_of({}) == []  # a ticket built by hand (a new one)
    assert tickets.labels_of({"labels_text": f"vip{tickets.LABEL_SEP}billing"}) == [
        "billing", "vip"]


@pytest.mark.anyio
async def test_set_replaces_the_labels_of_a_ticket_the_actor_manages(app, client, bot):
    alice = actor(await add_user(app, "alice", "agent"))
    sam = actor(await add_user(app, "sam", "supervisor"))
    r = await client.post(bot.smartly_path, json=builders.turn("u-1", "help", need_help=True))
    ticket_id = r.json()["ticket_id"]
    with pytest.raises(Forbidden):  # queued: an agent may see it, not manage it
        await app.state.store.write(labels.set_sync, ticket_id, alice, ["x"])
    out = await app.state.store.write(labels.set_sync, ticket_id, sam, ["b", "a"])
    assert tickets.summary(out)["labels"] == ["a", "b"]
    async with app.state.store.read() as conn:
        loaded = await tickets.load(conn, ticket_id)
        assert loaded is not None and tickets.summary(loaded)["labels"] == ["a", "b"]
        assert await labels.suggest(conn, sam, "") == [{"label": "a", "tickets": 1},
                                                      {"label": "b", "tickets": 1}]
