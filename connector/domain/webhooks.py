"""Event webhooks for the customer's own systems: subscriptions, and events queued for them.

An admin subscribes a URL to some of `EVENTS`. When one happens, `enqueue` adds a
row to the webhook outbox (`webhook_delivery`) for each enabled subscription that
wants it, in the same transaction as the change itself: nothing is announced for
a change that rolled back, and nothing committed goes unannounced. The body is
serialised once, here, and stored as sent (`delivery.webhooks` signs and sends
exactly those bytes). Its shape is Standard Webhooks': `{"type", "timestamp",
"data"}`; `webhook_events` builds each type's `data` (docs/webhooks.md).

Hot paths ask `wanted(tx, type)` first: a per-process answer kept `CACHE_SECONDS`
(counted from the read), so a write with no subscription wanting the event costs
one dictionary lookup, and a subscription made on another instance takes effect
there within that time. Changes made in this process take effect at once
(`forget`, called after their commit).

The signing secrets are kept as they are (see `WebhookSubscription`): shown once
at creation and rotation (`Created.secret`), never by `describe`.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.domain.errors import Conflict, FieldError, NotFound
from connector.outbound import signing
from connector.storage.db import utcnow
from connector.storage.store import SyncTx, Tx
from connector.storage.webhook_models import WebhookDelivery, WebhookSubscription

_s = WebhookSubscription.__table__
_d = WebhookDelivery.__table__

#: What a subscription may ask for; `webhook.test` is sent by "send test" only.
EVENTS = ("ticket.created", "ticket.assigned", "ticket.requeued", "ticket.resolved",
          "ticket.rated", "message.created")
TEST_EVENT = "webhook.test"
STATES = ("queued", "retrying", "delivered", "failed")
PENDING = ("queued", "retrying")
MAX_DESCRIPTION = 500
MAX_URL = 2000
#: How long a process trusts its answer to "does any subscription want this event".
CACHE_SECONDS = 1.0
#: Delivered and failed deliveries are kept this long (the log), then pruned.
KEEP = dt.timedelta(days=30)


# --- which events are wanted, cheaply ------------------------------------------------------

class _Wanted:
    """Per database engine: the event types some enabled subscription wants, and when
    that was read (`time.monotonic`)."""

    def __init__(self) -> None:
        self._by_engine: weakref.WeakKeyDictionary[Any, tuple[float, frozenset[str]]] = (
            weakref.WeakKeyDictionary())

    def get(self, conn: sa.Connection) -> frozenset[str]:
        engine = conn.engine
        hit = self._by_engine.get(engine)
        now = time.monotonic()
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        wanted: set[str] = set()
        for (events,) in conn.execute(sa.select(_s.c.events).where(_s.c.disabled.is_(False))):
            wanted.update(events or ())
        value = frozenset(wanted)
        self._by_engine[engine] = (now, value)
        return value

    def known_any(self) -> bool:
        """Whether this process last saw any subscription (no database read)."""
        return any(v[1] for v in self._by_engine.values())

    def forget(self) -> None:
        self._by_engine.clear()


_WANTED = _Wanted()


def wanted(tx: SyncTx, event_type: str) -> bool:
    """Whether an enabled subscription wants `event_type` (as of at most `CACHE_SECONDS`
    ago in this process)."""
    return event_type in _WANTED.get(tx.conn)


def forget() -> None:
    """Subscriptions changed in this process: read them again at the next `wanted`."""
    _WANTED.forget()


def any_known() -> bool:
    return _WANTED.known_any()


# --- the outbox --------------------------------------------------------------------------------

def new_webhook_id() -> str:
    """A `webhook-id`: `msg_` and a UUID (no `.`, as the signed content needs)."""
    return f"msg_{uuid.uuid4().hex}"


def body(event_type: str, data: dict[str, Any], at: dt.datetime | None = None) -> str:
    """The JSON body of an event, serialised once: `{"type", "timestamp", "data"}`."""
    stamp = (at or utcnow()).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": event_type, "timestamp": stamp, "data": data}).decode()


_ENABLED = sa.select(_s.c.id, _s.c.events).where(_s.c.disabled.is_(False)).order_by(_s.c.id)
_INSERT = sa.insert(_d)


def enqueue(tx: SyncTx, event_type: str, data: dict[str, Any],
            subscription_id: int | None = None) -> int:
    """Queue the event for every enabled subscription that wants it (or for
    `subscription_id` alone, whatever it wants: the test event); returns how many."""
    if subscription_id is None:
        targets = [r.id for r in tx.conn.execute(_ENABLED) if event_type in (r.events or ())]
    else:
        targets = [subscription_id]
    if not targets:
        return 0
    now = utcnow()
    text = body(event_type, data, now)
    webhook_id = new_webhook_id()
    tx.conn.execute(_INSERT, [{
        "subscription_id": sid, "event_type": event_type, "webhook_id": webhook_id,
        "body": text, "state": "queued", "attempts": 0, "tries": 0, "next_attempt_at": now,
        "created_at": now, "retry_since": now, "updated_at": now} for sid in targets])
    tx.deliveries = True  # wakes the workers after commit
    return len(targets)


def delivery_dict(row: Any) -> dict[str, Any]:
    """A webhook delivery as the admin's log shows it (never its body's secrets: it has
    none; the body is left out for size)."""
    get = row._mapping.get if hasattr(row, "_mapping") else row.get

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": get("id"), "subscription_id": get("subscription_id"),
            "event_type": get("event_type"), "webhook_id": get("webhook_id"),
            "state": get("state"), "attempts": get("attempts"),
            "last_status": get("last_status"),
            "last_error": None if get("state") == "delivered" else get("last_error"),
            "created_at": iso(get("created_at")),
            "next_attempt_at": iso(get("next_attempt_at")) if get("state") == "retrying"
            else None,
            "delivered_at": iso(get("delivered_at"))}


async def deliveries(conn: AsyncConnection, subscription_id: int,
                     limit: int = 100) -> list[dict[str, Any]]:
    """The subscription's latest deliveries, newest first."""
    rows = (await conn.execute(sa.select(_d).where(_d.c.subscription_id == subscription_id)
                               .order_by(_d.c.id.desc()).limit(limit))).all()
    return [delivery_dict(r) for r in rows]


async def resend(tx: Tx, delivery_id: int) -> dict[str, Any]:
    """Queue a failed (dead-lettered) delivery again, with the same `webhook-id` and body:
    it is the same event. The backoff and the give-up clock start over."""
    row = (await tx.conn.execute(sa.select(_d).where(_d.c.id == delivery_id))).first()
    if row is None:
        raise NotFound("no such webhook delivery")
    if row.state != "failed":
        raise Conflict(f"delivery is {row.state}, only failed ones can be re-sent")
    now = utcnow()
    await tx.conn.execute(sa.update(_d).where(_d.c.id == delivery_id, _d.c.state == "failed")
                          .values(state="queued", tries=0, next_attempt_at=now,
                                  retry_since=now, updated_at=now, lease_until=None))
    tx.deliveries = True
    return delivery_dict({**row._mapping, "state": "queued", "next_attempt_at": now})


async def prune(conn: AsyncConnection, now: dt.datetime) -> None:
    """Housekeeping: forget settled deliveries older than `KEEP` (pending ones stay)."""
    await conn.execute(sa.delete(_d).where(_d.c.state.in_(("delivered", "failed")),
                                           _d.c.created_at < now - KEEP))


# --- subscriptions -----------------------------------------------------------------------------

@dataclass(slots=True)
class Created:
    """A subscription, and its new secret: shown this once."""

    subscription: dict[str, Any]
    secret: str


def check_events(value: Any) -> list[str]:
    """A non-empty list of `EVENTS` (repeats dropped), sorted; FieldError naming `events.N`."""
    if not isinstance(value, list) or not value:
        raise FieldError("events", f"must be a non-empty list of: {', '.join(EVENTS)}")
    for n, name in enumerate(value):
        if name not in EVENTS:
            raise FieldError(f"events.{n}", f"unknown event; one of: {', '.join(EVENTS)}")
    return sorted(set(value))


def check_description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise FieldError("description", f"must be a text of at most {MAX_DESCRIPTION} "
                                        "characters, or null")
    return value.strip() or None


def describe(row: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """A subscription as the API shows it: never its secrets."""
    get = row._mapping.get if hasattr(row, "_mapping") else row.get
    now = now or utcnow()
    expires = get("previous_secret_expires_at")
    in_grace = get("previous_secret") is not None and expires is not None and expires > now
    return {"id": get("id"), "url": get("url"), "events": list(get("events") or []),
            "description": get("description"), "disabled": bool(get("disabled")),
            "disabled_reason": get("disabled_reason"),
            "previous_secret_expires_at": expires.isoformat() if in_grace else None,
            "created_at": get("created_at").isoformat(),
            "updated_at": get("updated_at").isoformat()}


async def _row(conn: AsyncConnection, subscription_id: int) -> Any:
    row = (await conn.execute(sa.select(_s).where(_s.c.id == subscription_id))).first()
    if row is None:
        raise NotFound("no such webhook")
    return row


async def get(conn: AsyncConnection, subscription_id: int) -> dict[str, Any]:
    return describe(await _row(conn, subscription_id))


async def list_all(conn: AsyncConnection) -> list[dict[str, Any]]:
    now = utcnow()
    return [describe(r, now) for r in await conn.execute(sa.select(_s).order_by(_s.c.id))]


async def create(conn: AsyncConnection, *, url: str, events: list[str],
                 description: str | None = None) -> Created:
    """`url` must have passed the outbound check (`outbound.check_url_resolved`)."""
    now = utcnow()
    values = {"url": url, "events": check_events(events),
              "description": check_description(description), "secret": signing.new_secret(),
              "disabled": False, "created_at": now, "updated_at": now}
    new_id = (await conn.execute(sa.insert(_s).returning(_s.c.id), values)).scalar_one()
    return Created(describe({**values, "id": new_id}, now), values["secret"])


async def update(conn: AsyncConnection, subscription_id: int, **changes: Any) -> dict[str, Any]:
    """Set `url` (checked by the caller), `events`, `description`, `disabled`."""
    await _row(conn, subscription_id)
    values: dict[str, Any] = {}
    if changes.get("url") is not None:
        values["url"] = changes["url"]
    if changes.get("events") is not None:
        values["events"] = check_events(changes["events"])
    if "description" in changes:
        values["description"] = check_description(changes["description"])
    if changes.get("disabled") is not None:
        values["disabled"] = bool(changes["disabled"])
        values["disabled_reason"] = None
    if values:
        values["updated_at"] = utcnow()
        await conn.execute(sa.update(_s).where(_s.c.id == subscription_id).values(**values))
    return await get(conn, subscription_id)


async def delete(conn: AsyncConnection, subscription_id: int) -> None:
    """The subscription and its deliveries (its log and anything still queued)."""
    await _row(conn, subscription_id)
    await conn.execute(sa.delete(_d).where(_d.c.subscription_id == subscription_id))
    await conn.execute(sa.delete(_s).where(_s.c.id == subscription_id))


async def rotate_secret(conn: AsyncConnection, subscription_id: int,
                        grace: dt.timedelta) -> Created:
    """A new secret; the current one still signs (a second signature) for `grace`."""
    current = await _row(conn, subscription_id)
    now = utcnow()
    values = {"secret": signing.new_secret(), "previous_secret": current.secret,
              "previous_secret_expires_at": now + grace, "updated_at": now}
    if grace <= dt.timedelta(0):
        values.update(previous_secret=None, previous_secret_expires_at=None)
    await conn.execute(sa.update(_s).where(_s.c.id == subscription_id).values(**values))
    return Created(describe({**current._mapping, **values}, now), values["secret"])


async def send_test(tx: Tx, subscription_id: int) -> dict[str, Any]:
    """Queue a `webhook.test` event for this subscription alone, through the outbox."""
    row = await _row(tx.conn, subscription_id)
    if row.disabled:
        raise Conflict("the webhook is disabled; enable it to send a test")
    data = {"subscription_id": subscription_id, "message": "A test event from the "
                                                          "handover connector"}
    await tx.run(enqueue, TEST_EVENT, data, subscription_id)
    latest = (await tx.conn.execute(sa.select(_d).where(_d.c.subscription_id == subscription_id)
                                    .order_by(_d.c.id.desc()).limit(1))).first()
    return delivery_dict(latest)


def secrets_of(row: Any, now: dt.datetime) -> list[str]:
    """The secrets a request is signed with: the current one first, then the previous one
    while in its grace."""
    out = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        out.append(row.previous_secret)
    return out
