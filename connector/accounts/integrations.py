"""Integrations: one bot's webhooks in (`connector.sources`) and its Chatlayer channel.

The integration's key (carried by the URL of a source authenticated by key) is
shown once and stored only as a hash. Rotation keeps the previous key valid
for a grace period, then it stops.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.accounts.security import hash_secret, new_id, new_secret, secret_matches
from connector.domain import notices
from connector.domain.errors import FieldError
from connector.sources import webhook_urls
from connector.storage.db import utcnow
from connector.storage.models import Integration

_t = Integration.__table__


class IntegrationError(FieldError):
    """An integration's name, channel URL or verify token refused."""


@dataclass(slots=True)
class Created:
    integration: Integration
    key: str


def check_channel_url(url: str) -> str:
    """An absolute http(s) URL with a host and a valid port, that the HTTP client
    (httpx, which delivers to it) can parse."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when not a number from 0 to 65535
        host = httpx.URL(url).host if parts.scheme in {"http", "https"} else ""
    except (ValueError, httpx.InvalidURL):  # e.g. "http://[", an IDNA-invalid host
        host = ""
    if not host:
        raise IntegrationError("channel_url", "must be an absolute http(s) URL")
    return url


#: Longest name and verify token (their columns' sizes), also in the API's schemas.
MAX_NAME = 200
MAX_TOKEN = 500


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise IntegrationError("name", f"must be 1 to {MAX_NAME} characters")
    return name


def check_token(token: str) -> str:
    if not token or len(token) > MAX_TOKEN:
        raise IntegrationError("verify_token", f"must be 1 to {MAX_TOKEN} characters")
    return token


def describe(row: Integration, public_url: str, key: str | None = None) -> dict[str, Any]:
    """An integration as the admin API and the CLI show it: each source's webhook URL
    (`webhook_urls`), and with `key` (at creation and rotation only) the key and the
    URLs that carry it."""
    out: dict[str, Any] = {
        "id": row.id, "name": row.name, "channel_url": row.channel_url,
        "verify_token": row.verify_token, "created_at": row.created_at.isoformat(),
        "key_rotated_at": row.key_rotated_at.isoformat() if row.key_rotated_at else None,
        "previous_key_valid_until": (row.previous_key_expires_at.isoformat()
                                     if row.previous_key_expires_at else None),
        # What the end user is told (`domain.notices`).
        "queue_message": row.queue_message, "assigned_message": row.assigned_message,
        "offline_message": row.offline_message, "business_hours": row.business_hours,
        "first_response_target_seconds": row.first_response_target_seconds,
        **webhook_urls(public_url, row.id, key),
    }
    if key is not None:
        out["key"] = key
    return out


async def create(conn: AsyncConnection, *, name: str, channel_url: str,
                 verify_token: str | None = None) -> Created:
    key = new_secret()
    row = Integration(
        id=new_id(), name=check_name(name), channel_url=check_channel_url(channel_url),
        verify_token=check_token(verify_token) if verify_token is not None else new_secret(),
        key_hash=hash_secret(key), created_at=utcnow(),
    )
    await conn.execute(sa.insert(_t).values(**_values(row)))
    return Created(row, key)


async def get(conn: AsyncConnection, integration_id: str) -> Integration | None:
    row = (await conn.execute(sa.select(_t).where(_t.c.id == integration_id))).first()
    return Integration.model_validate(row._mapping) if row else None


async def list_all(conn: AsyncConnection) -> list[Integration]:
    rows = (await conn.execute(sa.select(_t).order_by(_t.c.created_at))).all()
    return [Integration.model_validate(r._mapping) for r in rows]


async def rotate_key(conn: AsyncConnection, integration_id: str,
                     grace: dt.timedelta) -> Created | None:
    current = await get(conn, integration_id)
    if current is None:
        return None
    key = new_secret()
    now = utcnow()
    values = {"key_hash": hash_secret(key), "previous_key_hash": current.key_hash,
              "previous_key_expires_at": now + grace, "key_rotated_at": now}
    await conn.execute(sa.update(_t).where(_t.c.id == integration_id).values(**values))
    return Created(current.model_copy(update=values), key)


async def update(conn: AsyncConnection, integration_id: str, **changes: Any) -> Integration | None:
    checks = {"name": check_name, "channel_url": check_channel_url, "verify_token": check_token}
    values = {k: checks[k](v) for k, v in changes.items() if k in checks and v is not None}
    # The notices' fields: null clears a message or the hours, resets the target.
    values.update({k: NOTICE_CHECKS[k](v) for k, v in changes.items() if k in NOTICE_CHECKS})
    if values:
        await conn.execute(sa.update(_t).where(_t.c.id == integration_id).values(**values))
    return await get(conn, integration_id)


#: The fields of what the end user is told (`domain.notices`), each with its check.
NOTICE_CHECKS: dict[str, Callable[[Any], Any]] = {
    "queue_message": functools.partial(notices.check_message, "queue_message"),
    "assigned_message": functools.partial(notices.check_message, "assigned_message"),
    "offline_message": functools.partial(notices.check_message, "offline_message"),
    "business_hours": notices.check_business_hours,
    "first_response_target_seconds": notices.check_target,
}


def key_valid(integration: Integration, key: str, now: dt.datetime | None = None) -> bool:
    """Constant-time check of a presented key against current and grace keys."""
    now = now or utcnow()
    ok = secret_matches(key, integration.key_hash)
    previous_ok = secret_matches(key, integration.previous_key_hash)
    expires = integration.previous_key_expires_at
    return ok or (previous_ok and expires is not None and now < expires)


def _values(row: Integration) -> dict[str, Any]:
    return row.model_dump()


#: How long a cached integration is trusted. Any change made anywhere (an admin on
#: another instance, the CLI, SQL by hand) takes effect on every instance within it:
#: a revoked key or one rotated with no grace is refused everywhere within a second.
CACHE_SECONDS = 1.0


class IntegrationCache:
    """Integrations by id, kept for `ttl` seconds (counted from the read) to keep the
    webhook hot path cheap: at most one read per integration per `ttl` per instance.

    A presented key or token that does not match the cached row is checked
    again against a fresh read (`fresh=True`), so a new key or token set by
    another process works at once; the database stays the source of truth.
    """

    def __init__(self, engine: Any, ttl: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.ttl = ttl
        self._rows: dict[str, tuple[float, Integration]] = {}
        self._loading: dict[str, asyncio.Future[Integration | None]] = {}

    async def get(self, integration_id: str, *, fresh: bool = False) -> Integration | None:
        hit = self._rows.get(integration_id)
        if hit is not None and not fresh and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        if len(integration_id) > 32:
            return None
        # Single flight: when the entry expires under load, one read serves everyone.
        loading = self._loading.get(integration_id)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[Integration | None] = asyncio.get_running_loop().create_future()
        self._loading[integration_id] = future
        try:
            row = await self._load(integration_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(row)
        finally:
            del self._loading[integration_id]
        return row

    async def _load(self, integration_id: str) -> Integration | None:
        started = time.monotonic()
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(readonly=True)
            row = await get(conn, integration_id)
        if row is None:
            self._rows.pop(integration_id, None)
        else:
            self._rows[integration_id] = (started, row)
        return row

    def forget(self, integration_id: str) -> None:
        self._rows.pop(integration_id, None)
