"""The delivery worker: sends queued replies through their integration's channel.

Guarantees:

* At least once. A delivery holds a lease (`lease_until`) while it is sent,
  and its outcome is written after. A reply's delivery is created already
  leased to this process and handed to the worker in memory after commit
  (`outbox.enqueue`); any other is claimed by polling, a conditional UPDATE of
  the lease. If the process dies before the outcome is written, the lease runs
  out and any instance sends it again with the same `Idempotency-Key` header.
* Per-conversation order. Only the oldest pending delivery of a conversation
  is ever due; the next one waits until it is delivered or failed for good. A
  delivery is handed over in memory only when it is the conversation's sole
  pending one.
* Retries: what the channel says is worth retrying (`Outcome` "retrying")
  is tried again after the wait `policy` sets (exponential backoff with
  jitter, or the channel's Retry-After) until the give-up time; what it says
  failed is failed for good at once (see `channels.chatlayer_webhook`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from connector.channels import Channel, Outcome
from connector.delivery import policy
from connector.delivery.attempt import deliver_timed, log_attempt
from connector.delivery.outbox_worker import NOW, OutboxWorker, claim_statement, free
from connector.domain import events, outbox
from connector.domain.roles import audience_tickets
from connector.metrics import Metrics
from connector.settings import Settings
from connector.storage.bulk import Writer
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.models import Delivery, DeliveryAttempt, Integration, Message
from connector.storage.store import Store, SyncTx

_d = Delivery.__table__
_attempts = DeliveryAttempt.__table__
_integ = Integration.__table__
_msg = Message.__table__

_ATTEMPTS_SINCE = sa.select(sa.func.count()).select_from(_attempts).where(
    _attempts.c.delivery_id == sa.bindparam("did"),
    _attempts.c.at >= sa.bindparam("since", type_=UTCDateTime))
_INSERT_ATTEMPT = sa.insert(_attempts)
_OTHER_PENDING = sa.select(_d.c.id).where(
    _d.c.conversation_id == sa.bindparam("cid"), _d.c.state.in_(outbox.PENDING),
    _d.c.id != sa.bindparam("did")).limit(1)
#: Unset columns keep their value (NULL parameters).
_RECORD = sa.update(_d).where(
    _d.c.id == sa.bindparam("did"), _d.c.state.in_(outbox.PENDING),
    _d.c.attempts == sa.bindparam("tries")).values(
    attempts=sa.bindparam("attempt"), state=sa.bindparam("outcome"),
    last_status=sa.bindparam("status"), last_error=sa.bindparam("error"), lease_until=None,
    updated_at=NOW,
    delivered_at=sa.func.coalesce(sa.bindparam("delivered", type_=UTCDateTime),
                                  _d.c.delivered_at),
    next_attempt_at=sa.func.coalesce(sa.bindparam("next_at", type_=UTCDateTime),
                                     _d.c.next_attempt_at))
_JOB_FIELDS = tuple(f.name for f in fields(outbox.Job))


def _due_query(limit: int) -> sa.Select[Any]:
    """Due deliveries that are the oldest pending one of their conversation."""
    earlier = _d.alias("earlier")
    return (
        sa.select(_d, _integ.c.channel_url, _integ.c.verify_token, _msg.c.ticket_id)
        .join(_integ, _integ.c.id == _d.c.integration_id)
        .join(_msg, _msg.c.id == _d.c.message_id)
        .where(_d.c.state.in_(outbox.PENDING), _d.c.next_attempt_at <= NOW, free(_d))
        .where(_integ.c.disabled == sa.false())  # paused while it is disabled
        .where(~sa.exists().where(earlier.c.conversation_id == _d.c.conversation_id,
                                  earlier.c.state.in_(outbox.PENDING),
                                  earlier.c.id < _d.c.id))
        .order_by(_d.c.id)
        .limit(limit)
    )


@dataclass(slots=True)
class Recorded:
    values: dict[str, Any]
    delay: float | None
    #: Another delivery of the conversation is pending (it may be due now).
    more: bool


class DeliveryWorker(OutboxWorker[outbox.Job]):
    """Sends deliveries handed over in memory at once, and polls for the others.

    Polling claims due deliveries with a lease: retries, deliveries of other
    processes, deliveries left behind by one that died (their lease ran out),
    and later replies of a conversation whose earlier one was still pending.
    """

    def __init__(self, store: Store, channel_for: Callable[[str], Awaitable[Channel]],
                 settings: Settings, metrics: Metrics | None = None) -> None:
        super().__init__(store, settings, _due_query(settings.delivery_concurrency),
                         claim_statement(_d, outbox.PENDING))
        self.metrics = metrics if metrics is not None else Metrics()
        #: The channel of an integration (by id).
        self.channel_for = channel_for

    def hand_over(self, jobs: list[outbox.Job]) -> None:
        """Send deliveries just committed, already leased to this process: no claim."""
        if self._stopping:
            return  # their leases run out; polling (here or elsewhere) sends them
        for job in jobs:
            self._spawn(job, slot_held=False)

    def _job(self, row: Any) -> outbox.Job:
        return outbox.Job(*(getattr(row, f) for f in _JOB_FIELDS))

    async def _attempt(self, job: outbox.Job) -> bool:
        """True unless the conversation has no other pending reply (its next may be due)."""
        channel = await self.channel_for(job.integration_id)
        outcome, duration_ms = await deliver_timed(channel, job)
        recorded = await self.store.write(self._record_sync, job, outcome, duration_ms)
        if recorded is None:
            return True  # someone else recorded this attempt (our lease had run out)
        values = recorded.values
        log_attempt(job.id, job.message_id, values["attempts"], values["state"], outcome.status,
                    values["last_error"], duration_ms, recorded.delay, job.channel_url,
                    metrics=self.metrics)
        return recorded.more

    def _record_sync(self, tx: SyncTx, job: outbox.Job, outcome: Outcome,
                     duration_ms: float) -> Recorded | None:
        """Record one attempt and its outcome, unless someone else recorded it first."""
        now = utcnow()
        attempt = job.attempts + 1
        values: dict[str, Any] = {"attempts": attempt, "last_status": outcome.status,
                                  "last_error": outcome.error, "lease_until": None,
                                  "updated_at": now, "state": outcome.state}
        delay = None
        if outcome.state == "delivered":
            values["delivered_at"] = now
        elif outcome.state == "retrying":
            # A manual resend starts the backoff over (the attempt count keeps growing).
            since_resend = tx.conn.execute(_ATTEMPTS_SINCE, {
                "did": job.id, "since": job.retry_since}).scalar_one()
            delay = policy.next_delay(self.settings, since_resend + 1, outcome.retry_after,
                                      retry_since=job.retry_since, now=now)
            if delay is None:
                values["state"] = "failed"
                values["last_error"] = policy.gave_up(attempt, outcome.error)
            else:
                values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
        result = tx.conn.execute(_RECORD, {
            "did": job.id, "tries": job.attempts, "attempt": attempt, "outcome": values["state"],
            "status": outcome.status, "error": values["last_error"], "now": now,
            "delivered": values.get("delivered_at"), "next_at": values.get("next_attempt_at")})
        if result.rowcount != 1:
            return None
        tx.conn.execute(_INSERT_ATTEMPT, {
            "delivery_id": job.id, "attempt": attempt, "at": now, "status_code": outcome.status,
            "error": outcome.error, "duration_ms": round(duration_ms, 2),
            "outcome": values["state"]})
        self._emit(tx, job, {"id": job.id, **values})
        more = tx.conn.execute(_OTHER_PENDING, {"cid": job.conversation_id,
                                                "did": job.id}).first() is not None
        return Recorded(values, delay, more)

    @staticmethod
    def _emit(tx: SyncTx, job: outbox.Job, row: dict[str, Any]) -> None:
        if job.ticket_id is None:
            return
        ticket = audience_tickets(Writer(tx.conn), (job.ticket_id,)).get(job.ticket_id)
        if ticket is not None:
            tx.emit(events.delivery_updated(ticket, job.message_id, outbox.state_dict(row)))
