"""Agents as routing sees them: status, capacity, skills, load. Knows nothing of HTTP.

* Status: `online`, `away` or `offline`, set by the user (`set_status_sync`); a
  user whose last console closed `CONNECTOR_PRESENCE_GRACE_SECONDS` ago is set
  `offline` by the sweep (`routing.timers`). Each change is a `user.status` event.
* Available: status `online` and a console open on some instance
  (`realtime.presence`), not disabled, role `agent`.
* Capacity: `max_concurrent` open (assigned) tickets, or `CONNECTOR_AGENT_CAPACITY`
  when unset. Routing never goes above it, nor does an agent's own claim; a
  supervisor's assignment may (`check_capacity_sync` is not called for it).
  The capacity check runs with the agent's row locked (`lock_sync`), so two
  transactions, on any instance, cannot both take the last free place.
* Skills: strings matched against a ticket's language and category; an agent
  with none takes anything (`matches`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import sqlalchemy as sa

from connector.domain import events
from connector.domain.errors import Conflict, Invalid
from connector.realtime.presence import LIVE_FOR
from connector.storage.db import utcnow
from connector.storage.models import ConsolePresence, Ticket, User
from connector.storage.store import SyncTx

_u = User.__table__
_t = Ticket.__table__
_p = ConsolePresence.__table__

Status = Literal["online", "away", "offline"]
STATUSES: tuple[Status, ...] = get_args(Status)
MAX_SKILLS = 50
MAX_SKILL = 100



@dataclass(frozen=True, slots=True)
class Agent:
    """An available agent, with what routing weighs."""

    id: int
    username: str
    display_name: str
    capacity: int
    load: int
    skills: tuple[str, ...]
    last_assigned_at: dt.datetime | None

    @property
    def free(self) -> int:
        return self.capacity - self.load


def check_status(value: Any) -> Status:
    if value not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", field="status")
    return value  # type: ignore[no-any-return]


def check_capacity(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise Invalid("max_concurrent must be a whole number from 1 to 1000, or null",
                      field="max_concurrent")
    return value


def check_skills(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_SKILLS or not all(
            isinstance(s, str) and 0 < len(s.strip()) <= MAX_SKILL for s in value):
        raise Invalid(f"skills must be a list of at most {MAX_SKILLS} non-empty strings of "
                      f"at most {MAX_SKILL} characters", field="skills")
    return sorted({s.strip().lower() for s in value})


def check_display_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 100:
        raise Invalid("display_name must be 1 to 100 characters, or null",
                      field="display_name")
    return value.strip()


_PROFILE_CHECKS = {"max_concurrent": check_capacity, "skills": check_skills,
                   "display_name": check_display_name}


def check_profile(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked column values for the routing profile fields given (`PATCH` bodies)."""
    return {k: _PROFILE_CHECKS[k](v) for k, v in changes.items() if k in _PROFILE_CHECKS}


def matches(skills: Iterable[str], lang: str | None, category: str | None) -> bool:
    """An agent with no skills takes any ticket; otherwise one of their skills must be
    the ticket's category, its language (`fr-fr`) or that language's base (`fr`)."""
    skills = set(skills)
    if not skills:
        return True
    wanted = set()
    if lang:
        lang = lang.strip().lower().replace("_", "-")
        wanted |= {lang, lang.split("-", 1)[0]}
    if category:
        wanted.add(category.strip().lower())
    return bool(skills & wanted)


def capacity_of(max_concurrent: int | None, default: int) -> int:
    return max_concurrent if max_concurrent is not None else default


def display_name(row: Any) -> str:
    return row.display_name or row.username  # type: ignore[no-any-return]


def lock_sync(tx: SyncTx, user_id: int) -> Any:
    """The user's row, locked for the rest of the transaction (see the module)."""
    return tx.conn.execute(sa.select(_u).where(_u.c.id == user_id).with_for_update()).first()


def load_sync(conn: sa.Connection, user_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(_t).where(
        _t.c.assignee_id == user_id, _t.c.state == "assigned")).scalar_one()


def lock_many_sync(tx: SyncTx, candidates: list[Agent], default: int) -> list[Agent]:
    """`candidates` as they are now, their rows locked (in id order, as every locker of
    several does) for the rest of the transaction, loads counted again under the locks;
    those no longer online, disabled, or without room are left out."""
    ids = sorted(a.id for a in candidates)
    if not ids:
        return []
    rows = {r.id: r for r in tx.conn.execute(
        sa.select(_u.c.id, _u.c.status, _u.c.disabled, _u.c.max_concurrent)
        .where(_u.c.id.in_(ids)).order_by(_u.c.id).with_for_update())}
    loads = {r.assignee_id: r.n for r in tx.conn.execute(
        sa.select(_t.c.assignee_id, sa.func.count().label("n")).where(
            _t.c.assignee_id.in_(ids), _t.c.state == "assigned").group_by(_t.c.assignee_id))}
    out = []
    for agent in candidates:
        row = rows.get(agent.id)
        if row is None or row.status != "online" or row.disabled:
            continue
        fresh = replace(agent, capacity=capacity_of(row.max_concurrent, default),
                        load=loads.get(agent.id, 0))
        if fresh.free > 0:
            out.append(fresh)
    return out


def check_capacity_sync(tx: SyncTx, user_id: int, default: int) -> None:
    """Refuse (409) when the user already holds as many open tickets as they may."""
    user = lock_sync(tx, user_id)
    if user is None:
        return
    limit = capacity_of(user.max_concurrent, default)
    load = load_sync(tx.conn, user_id)
    if load >= limit:
        raise Conflict(f"at capacity: {load} open conversations of {limit}",
                       load=load, max_concurrent=limit)


def set_status_sync(tx: SyncTx, user_id: int, status: Status) -> dict[str, Any]:
    """Set the user's status; a change is a `user.status` event. Returns the user.

    Going `online` with no console open starts the presence grace from now (it
    would otherwise never start, or have run out long ago): without a console
    within `CONNECTOR_PRESENCE_GRACE_SECONDS` the sweep sets them offline again.
    """
    user = lock_sync(tx, user_id)
    if user is None:
        raise Conflict("no such user")
    if user.status != status:
        now = utcnow()
        values: dict[str, Any] = {"status": status, "status_at": now}
        if status == "online" and not _has_console(tx.conn, user_id, now):
            values["console_gone_at"] = now
        tx.conn.execute(sa.update(_u).where(_u.c.id == user_id).values(**values))
        tx.emit(events.user_status(user.id, user.username, user.role, status))
    return me_sync(tx.conn, user_id)


def _has_console(conn: sa.Connection, user_id: int, now: dt.datetime) -> bool:
    return conn.execute(sa.select(_p.c.user_id).where(
        _p.c.user_id == user_id, _p.c.seen_at > now - LIVE_FOR).limit(1)).first() is not None


def set_profile_sync(tx: SyncTx, user_id: int, changes: dict[str, Any]) -> None:
    """Set routing profile fields (`check_profile`) of the user."""
    values = check_profile(changes)
    if values:
        tx.conn.execute(sa.update(_u).where(_u.c.id == user_id).values(**values))


def me_sync(conn: sa.Connection, user_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(_u).where(_u.c.id == user_id)).one()
    return describe(row)


def describe(row: Any) -> dict[str, Any]:
    """A user's routing profile (`GET /api/me`, the users list): `max_concurrent` as set
    (null: the default, `CONNECTOR_AGENT_CAPACITY`)."""
    return {"id": row.id, "username": row.username, "role": row.role,
            "display_name": display_name(row), "status": row.status,
            "max_concurrent": row.max_concurrent, "skills": list(row.skills or [])}


def available_sync(conn: sa.Connection, now: dt.datetime, default_capacity: int) -> list[Agent]:
    """Agents who may be routed to now: status online, a live console, not disabled."""
    load = (sa.select(_t.c.assignee_id, sa.func.count().label("n"))
            .where(_t.c.state == "assigned").group_by(_t.c.assignee_id).subquery())
    live = sa.select(_p.c.user_id).where(_p.c.seen_at > now - LIVE_FOR)
    rows = conn.execute(
        sa.select(_u.c.id, _u.c.username, _u.c.display_name, _u.c.max_concurrent,
                  _u.c.skills, _u.c.last_assigned_at, sa.func.coalesce(load.c.n, 0).label("n"))
        .outerjoin(load, load.c.assignee_id == _u.c.id)
        .where(_u.c.role == "agent", _u.c.status == "online", _u.c.disabled.is_(False),
               _u.c.id.in_(live))).all()
    return [Agent(r.id, r.username, r.display_name or r.username,
                  capacity_of(r.max_concurrent, default_capacity), r.n,
                  tuple(r.skills or ()), r.last_assigned_at) for r in rows]


def anyone_online_sync(conn: sa.Connection, now: dt.datetime) -> bool:
    """Is any agent online with a console (at capacity or not)? `notices` tells the end
    user they are queued when so, and that nobody is there otherwise."""
    live = sa.select(_p.c.user_id).where(_p.c.seen_at > now - LIVE_FOR)
    return conn.execute(sa.select(_u.c.id).where(
        _u.c.role == "agent", _u.c.status == "online", _u.c.disabled.is_(False),
        _u.c.id.in_(live)).limit(1)).first() is not None


def go_offline_sync(tx: SyncTx, user_id: int, cutoff: dt.datetime) -> bool:
    """Set `offline` a user still `online` whose last console closed at or before
    `cutoff` with none open since (the presence grace ran out)."""
    user = lock_sync(tx, user_id)
    if (user is None or user.status != "online" or user.console_gone_at is None
            or user.console_gone_at > cutoff):
        return False
    tx.conn.execute(sa.update(_u).where(_u.c.id == user_id).values(
        status="offline", status_at=utcnow()))
    tx.emit(events.user_status(user.id, user.username, user.role, "offline"))
    return True
