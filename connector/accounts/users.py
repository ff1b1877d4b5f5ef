"""Staff accounts: agents, supervisors and admins. Passwords hashed with argon2id.

A user marked `must_change_password` (the generated first admin, or by an admin)
may do nothing but replace it (`change_own_password`); the web layer enforces
that on every call (`web.routes.deps.api`).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.accounts.security import hash_password
from connector.domain import agents
from connector.domain.errors import Conflict, FieldError, NotFound
from connector.domain.roles import ROLES
from connector.storage.db import utcnow
from connector.storage.models import User, UserSession

#: The rules for a username and a password, also published in the API's schemas.
MAX_USERNAME = 100
USERNAME_PATTERN = rf"^[A-Za-z0-9._@-]{{1,{MAX_USERNAME}}}$"
_USERNAME = re.compile(USERNAME_PATTERN)
MIN_PASSWORD = 8
MAX_PASSWORD = 1000

_t = User.__table__
_sessions = UserSession.__table__


class UserError(FieldError):
    """A username, role or password refused."""


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):  # `$` alone would let a final newline through
        raise UserError("username", f"1 to {MAX_USERNAME} letters, digits or . _ @ -")
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError("role", f"must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


async def create(conn: AsyncConnection, username: str, password: str, role: str, *,
                 password_hash: str | None = None, must_change_password: bool = False) -> User:
    """Create a user. Pass `password_hash` (made in a thread) from async servers:
    argon2 takes tens of milliseconds of CPU."""
    check_username(username)
    check_role(role)
    check_password(password)
    if await by_username(conn, username) is not None:
        raise UserError("username", "already taken")
    now = utcnow()
    user = User(username=username, password_hash=password_hash or hash_password(password),
                role=role, must_change_password=must_change_password,
                created_at=now, password_changed_at=now)
    values = user.model_dump(exclude={"id"})
    user.id = (await conn.execute(sa.insert(_t).values(**values).returning(_t.c.id))).scalar_one()
    return user


async def by_username(conn: AsyncConnection, username: str) -> User | None:
    row = (await conn.execute(sa.select(_t).where(_t.c.username == username))).first()
    return User.model_validate(row._mapping) if row else None


async def by_id(conn: AsyncConnection, user_id: int) -> User | None:
    row = (await conn.execute(sa.select(_t).where(_t.c.id == user_id))).first()
    return User.model_validate(row._mapping) if row else None


async def list_all(conn: AsyncConnection) -> list[User]:
    rows = (await conn.execute(sa.select(_t).order_by(_t.c.username))).all()
    return [User.model_validate(r._mapping) for r in rows]


async def set_password_hash(conn: AsyncConnection, user_id: int, password_hash: str, *,
                            must_change: bool | None = None,
                            keep_session: str | None = None) -> None:
    """Store a new password hash (and the must-change mark, when given) and end every
    session of the user but `keep_session`."""
    values: dict[str, object] = {"password_hash": password_hash,
                                 "password_changed_at": utcnow()}
    if must_change is not None:
        values["must_change_password"] = must_change
    await conn.execute(sa.update(_t).where(_t.c.id == user_id).values(**values))
    await revoke_sessions(conn, user_id, keep=keep_session)


def check_new_password(current: str, new: str) -> str:
    """A password a user chose for themselves: the rules of `check_password`, and not
    the one it replaces (else a one-time password would stay)."""
    try:
        check_password(new)
    except UserError as exc:
        raise UserError("new", str(exc)) from None
    if new == current:
        raise UserError("new", "must differ from the current password")
    return new


async def change_own_password(conn: AsyncConnection, user_id: int, session_id: str,
                              password_hash: str) -> None:
    """The user replaced their password (the current one checked by the caller, in a
    thread): the must-change mark is cleared and their other sessions end."""
    await set_password_hash(conn, user_id, password_hash, must_change=False,
                            keep_session=session_id)


async def update(conn: AsyncConnection, user_id: int, *, role: str | None = None,
                 disabled: bool | None = None, must_change_password: bool | None = None,
                 ) -> None:
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = check_role(role)
    if disabled is not None:
        values["disabled"] = disabled
    if must_change_password is not None:
        values["must_change_password"] = must_change_password
    if disabled:
        values["status"] = "offline"  # takes no work, and is shown so
    if values:
        await conn.execute(sa.update(_t).where(_t.c.id == user_id).values(**values))
    if disabled or must_change_password:  # signed out: the next sign-in asks for one
        await revoke_sessions(conn, user_id)


async def change(conn: AsyncConnection, admin_id: int, user_id: int, *, role: str | None = None,
                 disabled: bool | None = None, password_hash: str | None = None,
                 routing: dict[str, Any] | None = None,
                 must_change_password: bool | None = None) -> tuple[User, User]:
    """Change a user's role, disabled flag, must-change mark or password hash (each when
    given), and the
    routing profile fields in `routing` (`max_concurrent`, `skills`, `display_name`;
    null resets one), as the admin `admin_id`, who may neither disable nor demote
    themselves. Returns the user before and after."""
    before = await by_id(conn, user_id)
    if before is None:
        raise NotFound("no such user")
    if user_id == admin_id and (disabled or (role is not None and role != "admin")):
        raise Conflict("you cannot disable or demote yourself")
    await update(conn, user_id, role=role, disabled=disabled,
                 must_change_password=must_change_password)
    if routing:
        await conn.execute(sa.update(_t).where(_t.c.id == user_id).values(
            **agents.check_profile(routing)))
    if password_hash is not None:
        await set_password_hash(conn, user_id, password_hash)
    after = await by_id(conn, user_id)
    assert after is not None
    return before, after


async def revoke_sessions(conn: AsyncConnection, user_id: int, *,
                          keep: str | None = None) -> None:
    """End every session of the user (but `keep`, the one making the change)."""
    query = sa.update(_sessions).where(_sessions.c.user_id == user_id,
                                       _sessions.c.revoked_at.is_(None))
    if keep is not None:
        query = query.where(_sessions.c.id != keep)
    await conn.execute(query.values(revoked_at=utcnow()))


async def set_disabled(conn: AsyncConnection, username: str, disabled: bool) -> User:
    """Disable (ending their sessions) or enable a user by name (the CLI's way). The last
    enabled admin is not disabled (`Conflict`): nobody could administer the service."""
    user = await by_username(conn, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    assert user.id is not None
    if disabled and user.role == "admin" and not user.disabled:
        others = (await conn.execute(sa.select(sa.func.count()).select_from(_t).where(
            _t.c.role == "admin", _t.c.disabled == sa.false(), _t.c.id != user.id))).scalar_one()
        if not others:
            raise Conflict(f"{username} is the last enabled admin; make another admin first")
    await update(conn, user.id, disabled=disabled)
    return user


async def reset_password(conn: AsyncConnection, username: str, password_hash: str, *,
                         must_change: bool) -> User:
    """An operator set a user's password by name (the CLI's way): their sessions end."""
    user = await by_username(conn, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    assert user.id is not None
    await set_password_hash(conn, user.id, password_hash, must_change=must_change)
    return user


async def ensure_admin(conn: AsyncConnection, username: str,
                       password: str | None) -> str | None:
    """Create the first admin when there is none.

    Idempotent under a race: instances started at the same moment may all see no
    admin; the one whose insert loses (the username's unique constraint) re-reads
    and finds the winner's admin. Returns the generated one-time password (None when
    an admin exists or the password was given through the environment), which must be
    replaced at the first sign-in.
    """
    if await _has_admin(conn):
        return None
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(18)
    try:
        async with conn.begin_nested():
            await create(conn, username, password, "admin",
                         must_change_password=generated is not None)
    except (UserError, sa.exc.IntegrityError):
        if await _has_admin(conn):  # another instance created it meanwhile
            return None
        raise
    return generated


async def _has_admin(conn: AsyncConnection) -> bool:
    return bool((await conn.execute(
        sa.select(sa.func.count()).select_from(_t).where(_t.c.role == "admin"))).scalar_one())
