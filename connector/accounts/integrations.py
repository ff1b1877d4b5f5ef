"""Integrations: one bot's webhooks in (`connector.sources`) and where replies go out
(`kind`: its Chatlayer Webhook channel, or Chatlayer's conversation actions API).

The integration's key (carried by the URL of a source authenticated by key) is
shown once and stored only as a hash. Rotation keeps the previous key valid
for a grace period, then it stops.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.accounts.security import hash_matches, hash_secret, new_id, new_secret
from connector.domain import csat, notices
from connector.domain.errors import FieldError
from connector.outbound import Network, check_url_resolved, signing
from connector.outbound.urls import split as split_url
from connector.sources import webhook_urls
from connector.storage.db import utcnow
from connector.storage.models import Integration

_t = Integration.__table__


class IntegrationError(FieldError):
    """An integration's name, channel URL or verify token refused."""


@dataclass(slots=True)
class Created:
    integration: Integration
    #: The new key (creation, key rotation) or signing secret (its rotation): shown once.
    key: str


def check_channel_url(url: str) -> str:
    """An absolute http(s) URL with a host and a valid port, that the HTTP client
    (httpx, which delivers to it) can parse. Where it may lead is `check_reachable`'s."""
    try:
        split_url(url, "channel_url")
    except FieldError as exc:
        raise IntegrationError("channel_url", str(exc)) from None
    return url


#: The fields holding a URL we will call.
URL_FIELDS = ("channel_url", "api_url")


async def check_reachable(allow: Sequence[Network], fields: Mapping[str, Any]) -> None:
    """The URL fields among `fields` (`URL_FIELDS`) must lead to addresses we may connect
    to (`outbound.check_url_resolved`: FieldError naming the field). It waits on DNS: call
    it before the transaction that saves them (the API and the CLI do)."""
    for field in URL_FIELDS:
        if isinstance(fields.get(field), str):
            try:
                await check_url_resolved(fields[field], field, allow)
            except FieldError as exc:
                raise IntegrationError(field, str(exc)) from None


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


#: What an integration connects: `smartly` (Smartly webhooks in, replies through the
#: Chatlayer Webhook channel at `channel_url`) or `chatlayer-offloading` (Chatlayer's
#: Offloading webhook in, replies and handback through Chatlayer's conversation actions
#: API at `api_url` with `api_token`).
KINDS = ("smartly", "chatlayer-offloading")
OFFLOADING = "chatlayer-offloading"
#: Longest handback action body, as JSON.
MAX_ACTION = 4000


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise IntegrationError("kind", f"must be one of {', '.join(KINDS)}")
    return kind


def check_api_url(url: str) -> str:
    """Chatlayer's API base URL (`https://api.chatlayer.ai`): as a channel URL."""
    try:
        return check_channel_url(url)
    except IntegrationError:
        raise IntegrationError("api_url", "must be an absolute http(s) URL") from None


def check_api_token(token: str) -> str:
    if not token.strip() or len(token) > 2000 or any(c in token for c in "\r\n\x00"):
        raise IntegrationError("api_token", "must be 1 to 2000 characters on one line")
    return token


def check_handback_action(action: Any) -> dict[str, Any] | None:
    """The conversation action sent to un-pause the bot: a JSON object (None: the
    default, `channels.chatlayer_actions.DEFAULT_HANDBACK`)."""
    if action is None:
        return None
    if not isinstance(action, dict) or not action:
        raise IntegrationError("handback_action", "must be a non-empty JSON object or null")
    if len(json.dumps(action)) > MAX_ACTION:
        raise IntegrationError("handback_action", f"must be at most {MAX_ACTION} characters "
                                                  "as JSON")
    return action


def describe(row: Integration, public_url: str, key: str | None = None,
             signing_secret: str | None = None) -> dict[str, Any]:
    """An integration as the admin API and the CLI show it: its kind, each source's
    webhook URL (`webhook_urls`: null for those of another kind), and with `key` (at
    creation and rotation only) the key and the URLs that carry it. The API token is
    never shown, only whether one is set."""
    out: dict[str, Any] = {
        "id": row.id, "name": row.name, "kind": row.kind, "disabled": row.disabled,
        "channel_url": row.channel_url,
        "api_url": row.api_url, "api_token_set": bool(row.api_token), "bot_id": row.bot_id,
        "handback_action": row.handback_action,
        "verify_token": row.verify_token, "created_at": row.created_at.isoformat(),
        "key_rotated_at": row.key_rotated_at.isoformat() if row.key_rotated_at else None,
        "previous_key_valid_until": (row.previous_key_expires_at.isoformat()
                                     if row.previous_key_expires_at else None),
        # The signing secret itself only in `signing_secret` at creation and rotation.
        "signing_secret_rotated_at": _iso(row.signing_secret_rotated_at),
        "previous_signing_secret_valid_until": _iso(row.previous_signing_secret_expires_at),
        # What the end user is told (`domain.notices`).
        "queue_message": row.queue_message, "assigned_message": row.assigned_message,
        "offline_message": row.offline_message, "business_hours": row.business_hours,
        "first_response_target_seconds": row.first_response_target_seconds,
        # The satisfaction survey (`domain.csat`); null: the defaults.
        "survey_question": row.survey_question, "survey_labels": row.survey_labels,
        **webhook_urls(public_url, row.id, key, row.kind),
    }
    if key is not None:
        out["key"] = key
    if signing_secret is not None:
        out["signing_secret"] = signing_secret
    return out


async def create(conn: AsyncConnection, *, name: str, channel_url: str | None = None,
                 verify_token: str | None = None, kind: str = "smartly",
                 api_url: str | None = None, api_token: str | None = None,
                 handback_action: Any = None) -> Created:
    """A new integration of `kind`: `smartly` needs `channel_url`; `chatlayer-offloading`
    needs `api_url` and `api_token` (`IntegrationError` naming the missing field)."""
    key = new_secret()
    kind = check_kind(kind)
    fields: dict[str, Any] = {"channel_url": ""}
    if kind == OFFLOADING:
        for field, value in (("api_url", api_url), ("api_token", api_token)):
            if value is None:
                raise IntegrationError(field, f"is required for a {OFFLOADING} integration")
        fields.update(api_url=check_api_url(api_url or ""),
                      api_token=check_api_token(api_token or ""),
                      handback_action=check_handback_action(handback_action))
    else:
        if channel_url is None:
            raise IntegrationError("channel_url", "is required for a smartly integration")
        fields["channel_url"] = check_channel_url(channel_url)
    row = Integration(
        id=new_id(), name=check_name(name), kind=kind, **fields,
        signing_secret=signing.new_secret(),
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


async def bind_bot(conn: AsyncConnection, integration_id: str, bot_id: str) -> bool:
    """Bind a Chatlayer Offloading integration to the bot of its first event; True if it
    serves `bot_id` (now or already), False if it is bound to another bot."""
    await conn.execute(sa.update(_t).where(_t.c.id == integration_id, _t.c.bot_id.is_(None))
                       .values(bot_id=bot_id))
    bound = (await conn.execute(sa.select(_t.c.bot_id).where(_t.c.id == integration_id))).scalar()
    return bound == bot_id


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


async def rotate_signing_secret(conn: AsyncConnection, integration_id: str,
                                grace: dt.timedelta) -> Created | None:
    """A new signing secret (in `Created.key`); the previous one keeps signing (a second
    signature) for `grace`."""
    current = await get(conn, integration_id)
    if current is None:
        return None
    secret = signing.new_secret()
    now = utcnow()
    values = {"signing_secret": secret,
              "previous_signing_secret": current.signing_secret or None,
              "previous_signing_secret_expires_at": now + grace,
              "signing_secret_rotated_at": now}
    await conn.execute(sa.update(_t).where(_t.c.id == integration_id).values(**values))
    return Created(current.model_copy(update=values), secret)


def signing_secrets(integration: Integration, now: dt.datetime | None = None,
                    ) -> tuple[str, ...]:
    """The secrets that sign what we send now: the current one, and the rotated-out one
    during its grace period; none for an integration without a secret."""
    return signing.in_use(integration.signing_secret, integration.previous_signing_secret,
                          integration.previous_signing_secret_expires_at, now or utcnow())


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def update(conn: AsyncConnection, integration_id: str, **changes: Any) -> Integration | None:
    checks = {"name": check_name, "channel_url": check_channel_url, "verify_token": check_token,
              "api_url": check_api_url, "api_token": check_api_token}
    values = {k: checks[k](v) for k, v in changes.items() if k in checks and v is not None}
    if "handback_action" in changes:  # null: back to the default
        values["handback_action"] = check_handback_action(changes["handback_action"])
    # The notices' and the survey's fields: null clears a message, the hours, the
    # survey texts, resets the target.
    values.update({k: NOTICE_CHECKS[k](v) for k, v in changes.items() if k in NOTICE_CHECKS})
    if values:
        await conn.execute(sa.update(_t).where(_t.c.id == integration_id).values(**values))
    return await get(conn, integration_id)


#: The fields of what the end user is told (`domain.notices`, `domain.csat`), each with its
#: check.
NOTICE_CHECKS: dict[str, Callable[[Any], Any]] = {
    "queue_message": functools.partial(notices.check_message, "queue_message"),
    "assigned_message": functools.partial(notices.check_message, "assigned_message"),
    "offline_message": functools.partial(notices.check_message, "offline_message"),
    "business_hours": notices.check_business_hours,
    "first_response_target_seconds": notices.check_target,
    "survey_question": csat.check_question,
    "survey_labels": csat.check_labels,
}


def key_valid(integration: Integration, key: str, now: dt.datetime | None = None) -> bool:
    """Constant-time check of a presented key against current and grace keys (the key is
    hashed once, and compared with both)."""
    presented = hash_secret(key)
    ok = hash_matches(presented, integration.key_hash)
    previous_ok = hash_matches(presented, integration.previous_key_hash)
    if ok:
        return True
    expires = integration.previous_key_expires_at
    return previous_ok and expires is not None and (now or utcnow()) < expires


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
