"""The worker that sends event webhooks from their outbox (`webhook_delivery`).

Guarantees:

* At least once, cluster-wide. A due delivery is claimed with a lease
  (`lease_until`, a conditional UPDATE on its state, attempt count and free
  lease), sent, and its outcome written after. If the process dies in between,
  the lease runs out and any instance sends it again, with the same
  `webhook-id`: receivers deduplicate on it.
* No order. Deliveries are sent as they are due, several at a time; a receiver
  orders events by the body's `timestamp` (and the ids in `data`), as the
  Standard Webhooks specification expects of it.
* Retries: what `webhook_sender` says is worth retrying is tried again after the
  wait `policy` sets (the reply deliveries' backoff settings: exponential with
  jitter, or the receiver's `Retry-After`) until `CONNECTOR_RETRY_GIVE_UP_SECONDS`
  after it was queued or re-sent; then it is failed: the dead letter, kept in the
  subscription's delivery log, which an admin can re-send. 410 Gone disables the
  subscription.

Woken after a commit that queued something in this process (`Store.on_delivery`),
by the live stream's ticket and message events (from other instances and the
ingest writer), and every `CONNECTOR_DELIVERY_POLL_SECONDS` anyway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import httpx
import sqlalchemy as sa

from connector.channels.base import Outcome
from connector.delivery import policy
from connector.delivery.attempt import log_attempt
from connector.delivery.outbox_worker import NOW, OutboxWorker, claim_statement, free
from connector.delivery.webhook_sender import gone, send
from connector.domain import webhooks
from connector.realtime.stream import Event
from connector.settings import Settings
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.store import Store, SyncTx
from connector.storage.webhook_models import WebhookDelivery, WebhookSubscription

log = logging.getLogger("connector.delivery")

_d = WebhookDelivery.__table__
_s = WebhookSubscription.__table__
_RECORD = sa.update(_d).where(
    _d.c.id == sa.bindparam("did"), _d.c.state.in_(webhooks.PENDING),
    _d.c.attempts == sa.bindparam("seen"))
_GONE = sa.update(_s).where(_s.c.id == sa.bindparam("sid")).values(
    disabled=True, disabled_reason="the receiver answered 410 Gone",
    updated_at=sa.bindparam("now", type_=UTCDateTime))
#: Stream events after which something may have been queued elsewhere.
WAKING_EVENTS = frozenset({"ticket.created", "ticket.updated", "message.created"})


def _due_query(limit: int) -> sa.Select[Any]:
    """Due deliveries of enabled subscriptions, oldest first, with what sending needs."""
    return (sa.select(_d.c.id, _d.c.attempts, _d.c.tries, _d.c.retry_since, _d.c.webhook_id,
                      _d.c.body, _d.c.event_type, _d.c.subscription_id, _s.c.url, _s.c.secret,
                      _s.c.previous_secret, _s.c.previous_secret_expires_at)
            .join(_s, _s.c.id == _d.c.subscription_id)
            .where(_d.c.state.in_(webhooks.PENDING), _d.c.next_attempt_at <= NOW, free(_d),
                   _s.c.disabled.is_(False))
            .order_by(_d.c.id).limit(limit))


class WebhookWorker(OutboxWorker[Any]):
    """Claims due event webhooks, sends them with `client`, records what came of it."""

    claiming_as = "webhooks"
    job_as = "webhook delivery"
    wake_after_failure = False

    def __init__(self, store: Store, client: httpx.AsyncClient, settings: Settings) -> None:
        super().__init__(store, settings, _due_query(settings.delivery_concurrency),
                         claim_statement(_d, webhooks.PENDING))
        self.client = client

    def saw(self, events: list[Event]) -> None:
        """For the hub: events that may have queued a webhook elsewhere wake the worker,
        when this process knows of any subscription (else the poll finds them)."""
        if webhooks.any_known() and any(e.type in WAKING_EVENTS for e in events):
            self._wake.set()

    def _job(self, row: Any) -> Any:
        return row  # the due query's row has what sending needs

    async def _attempt(self, row: Any) -> bool:
        """Nothing else becomes due when one is sent: False."""
        secrets = webhooks.secrets_of(row, utcnow())
        started = asyncio.get_running_loop().time()
        outcome = await send(self.client, row.url, secrets, row.webhook_id, row.body,
                             self.settings.delivery_timeout_seconds)
        duration_ms = (asyncio.get_running_loop().time() - started) * 1000
        values, delay = await self.store.write(self._record_sync, row, outcome)
        if outcome.state == "failed" and gone(outcome):
            webhooks.forget()  # disabled: this process stops queueing for it at once
        if values is not None:
            log_attempt(f"webhook-{row.id}", row.event_type, values["attempts"],
                        values["state"], outcome.status, values["last_error"],
                        duration_ms, delay, row.url)
        return False

    def _record_sync(self, tx: SyncTx, row: Any, outcome: Outcome,
                     ) -> tuple[dict[str, Any] | None, float | None]:
        """Record one attempt, unless someone else recorded it first (our lease ran out)."""
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": row.attempts + 1, "tries": row.tries + 1, "state": outcome.state,
            "last_status": outcome.status, "last_error": outcome.error, "lease_until": None,
            "updated_at": now}
        delay = None
        if outcome.state == "delivered":
            values["delivered_at"] = now
        elif outcome.state == "retrying":
            delay = policy.next_delay(self.settings, row.tries + 1, outcome.retry_after,
                                      retry_since=row.retry_since, now=now)
            if delay is None:
                values["state"] = "failed"
                values["last_error"] = policy.gave_up(values["attempts"], outcome.error)
            else:
                values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
        if values["last_error"] is not None:
            values["last_error"] = values["last_error"][:1000]
        if tx.conn.execute(_RECORD.values(**values), {"did": row.id,
                                                      "seen": row.attempts}).rowcount != 1:
            return None, None
        if gone(outcome):
            tx.conn.execute(_GONE, {"sid": row.subscription_id, "now": now})
            log.warning("webhook subscription=%s disabled: its URL answered 410 Gone",
                        row.subscription_id)
        return values, delay
