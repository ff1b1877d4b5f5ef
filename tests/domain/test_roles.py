"""`connector.domain.roles`: each rule of who sees what, checked in all its forms.

The Python rule and the SQL condition agree on every role, state and assignee,
on SQLite and on PostgreSQL; the audience query's Core statement and its SQLite
text return the same rows; and whoever may see a ticket hears of its events,
nobody else.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa

from connector.domain import roles, tickets
from connector.domain.events import message_created, ticket_updated
from connector.domain.roles import Actor
from connector.storage.bulk import Writer
from connector.storage.db import utcnow
from connector.storage.models import Conversation, Ticket
from tests.conftest import add_bot, add_user, on_each_dialect

pytestmark = pytest.mark.anyio

_t = Ticket.__table__
_conv = Conversation.__table__


settings = on_each_dialect()


async def _world(app: Any) -> tuple[list[Actor], list[dict[str, Any]]]:
    """A user of every role plus another agent, and a ticket in every state with every
    one of them, or nobody, as its assignee."""
    actors = []
    for username, role in [("agent", "agent"), ("other", "agent"),
                           ("sup", "supervisor"), ("adm", "admin")]:
        user = await add_user(app, username, role)
        actors.append(Actor(user.id, user.username, user.role))
    bot = await add_bot(app, "http://127.0.0.1:9/")
    now = utcnow()
    async with app.state.store.transaction() as tx:
        conv = (await tx.conn.execute(sa.insert(_conv).values(
            integration_id=bot.id, end_user_id="u-1", created_at=now,
            updated_at=now).returning(_conv.c.id))).scalar_one()
        for state, assignee in itertools.product(tickets.STATES,
                                                 [None, *(a.id for a in actors)]):
            await tx.conn.execute(sa.insert(_t).values(
                conversation_id=conv, integration_id=bot.id, state=state,
                assignee_id=assignee, reason="need_help", opened_at=now))
    async with app.state.store.read() as conn:
        rows = (await conn.execute(sa.select(_t.c.id, _t.c.state, _t.c.assignee_id))).all()
    return actors, [dict(r._mapping) for r in rows]


async def test_can_see_in_python_and_in_sql_agree(app):
    actors, all_tickets = await _world(app)
    assert len(all_tickets) == len(tickets.STATES) * (len(actors) + 1)
    assert {a.role for a in actors} == set(roles.ROLES)
    async with app.state.store.read() as conn:
        for actor in actors:
            in_sql = set((await conn.execute(
                sa.select(_t.c.id).where(roles.can_see_sql(actor)))).scalars())
            in_python = {t["id"] for t in all_tickets if roles.can_see(actor, t)}
            assert in_sql == in_python, actor
            if actor.is_staff:
                assert in_python == {t["id"] for t in all_tickets}
            else:  # the queue and their own, in every state
                assert len(in_python) == 1 + len(tickets.STATES) + len(actors) - 1


async def test_the_audience_query_and_its_sqlite_text_give_the_same_rows(app):
    _, all_tickets = await _world(app)
    ids = [*(t["id"] for t in all_tickets[::3]), 10**9]  # and one that does not exist
    expected = {t["id"]: t for t in all_tickets if t["id"] in ids}

    def read(tx: Any) -> list[dict[int, dict[str, Any]]]:
        found = []
        for raw in {False, Writer(tx.conn).raw}:  # Core, and the SQLite text on SQLite
            writer = Writer(tx.conn)
            writer.raw = raw
            found.append(roles.audience_tickets(writer, set(ids)))
        return found

    found = await app.state.store.write(read)
    assert len(found) == (2 if app.state.engine.dialect.name == "sqlite" else 1)
    assert all(f == expected for f in found)
    assert await app.state.store.write(lambda tx: roles.audience_tickets(Writer(tx.conn),
                                                                          set())) == {}


def test_whoever_may_see_a_ticket_hears_of_its_events_and_nobody_else():
    people = [Actor(1, "a", "agent"), Actor(2, "b", "agent"), Actor(3, "s", "supervisor"),
              Actor(4, "d", "admin")]
    for state, assignee in itertools.product(tickets.STATES, [None, 1, 2, 3, 4]):
        ticket = {"id": 7, "state": state, "assignee_id": assignee}
        event = message_created(ticket, {"id": 1})
        for who in people:
            assert event.visible_to(who.id, who.role) == roles.can_see(who, ticket)


def test_a_ticket_update_also_reaches_whoever_the_caller_names():
    """A transfer from agent 1 to agent 2 is also agent 1's business (and, when the
    ticket enters or leaves the queue, everyone's)."""
    ticket = {"id": 7, "state": "assigned", "assignee_id": 2}
    moved = ticket_updated(ticket, 1)
    assert (moved.public, moved.user_ids) == (False, [1, 2])
    requeued = ticket_updated({**ticket, "state": "queued", "assignee_id": None}, 1)
    assert (requeued.public, requeued.user_ids) == (True, [1])
    claimed = ticket_updated(ticket, public=True)
    assert (claimed.public, claimed.user_ids) == (True, [2])


def test_staff_may_manage_every_ticket_an_agent_only_their_own():
    ticket = {"id": 7, "state": "assigned", "assignee_id": 1}
    assert roles.can_manage(Actor(1, "a", "agent"), ticket)
    assert not roles.can_manage(Actor(2, "b", "agent"), ticket)
    assert all(roles.can_manage(Actor(3, "s", role), ticket) for role in roles.STAFF)
