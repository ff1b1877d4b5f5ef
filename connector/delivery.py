"""The delivery worker: sends queued replies to the integration's Chatlayer channel.

Guarantees:

* At least once. A delivery is claimed with a lease (a conditional UPDATE on
  `lease_until`) before it is sent, and its outcome is written after. If the
  process dies in between, the lease runs out and any instance sends it again
  with the same `Idempotency-Key` header.
* Per-conversation order. Only the oldest pending delivery of a conversation
  is ever due; the next one waits until it is delivered or failed for good.
* Retries: timeouts, connection errors, 408, 429 and 5xx back off
  exponentially with jitter (Retry-After honoured) until the give-up time;
  other 4xx fail for good at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from connector import outbox, tickets
from connector.db import utcnow
from connector.models import Delivery, DeliveryAttempt, Integration, Message
from connector.settings import Settings
from connector.store import Store
from connector.stream import Event

log = logging.getLogger("connector.delivery")

_d = Delivery.__table__
_attempts = DeliveryAttempt.__table__
_integ = Integration.__table__
_msg = Message.__table__

RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(slots=True)
class Outcome:
    state: str  # delivered | retrying | failed
    status: int | None
    error: str | None
    retry_after: float | None = None


def chatlayer_body(recipient_id: str, verify_token: str, message: Any) -> dict[str, Any]:
    """Chatlayer's bot-response shape: the channel delivers it as if the bot spoke."""
    return {"recipient": {"id": recipient_id}, "verifyToken": verify_token, "message": message}


def classify(status: int | None, error: str | None, headers: httpx.Headers | None) -> Outcome:
    if status is None:
        return Outcome("retrying", None, error)
    if 200 <= status < 300:
        return Outcome("delivered", status, None)
    reason = f"HTTP {status}"
    if status in RETRYABLE_STATUS or status >= 500:
        return Outcome("retrying", status, reason, parse_retry_after(headers))
    return Outcome("failed", status, reason)


def parse_retry_after(headers: httpx.Headers | None) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - utcnow()).total_seconds())


def backoff(settings: Settings, attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt + 1`: base * 2**(attempt-1), capped, with jitter."""
    rng = rng or random
    delay = min(settings.retry_max_delay_seconds,
                settings.retry_base_seconds * 2 ** max(0, attempt - 1))
    return delay * (1 + rng.uniform(-settings.retry_jitter, settings.retry_jitter))


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}" \
           f"{parts.path}"


class DeliveryWorker:
    def __init__(self, store: Store, client: httpx.AsyncClient, settings: Settings) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = await self._claim_due()
            except Exception:
                log.exception("delivery: claiming due deliveries failed")
                claimed = []
            for job in claimed:
                await self._slots.acquire()
                task = asyncio.create_task(self._run_one(job))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if claimed:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.delivery_poll_seconds)
            except TimeoutError:
                pass

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:  # their leases expire; another run sends them again
                task.cancel()

    async def _claim_due(self) -> list[Any]:
        now = utcnow()
        earlier = _d.alias("earlier")
        free = sa.or_(_d.c.lease_until.is_(None), _d.c.lease_until < now)
        query = (
            sa.select(_d, _integ.c.channel_url, _integ.c.verify_token, _msg.c.ticket_id)
            .join(_integ, _integ.c.id == _d.c.integration_id)
            .join(_msg, _msg.c.id == _d.c.message_id)
            .where(_d.c.state.in_(outbox.PENDING), _d.c.next_attempt_at <= now, free)
            .where(~sa.exists().where(earlier.c.conversation_id == _d.c.conversation_id,
                                      earlier.c.state.in_(outbox.PENDING),
                                      earlier.c.id < _d.c.id))
            .order_by(_d.c.id)
            .limit(self.settings.delivery_concurrency)
        )
        lease = now + dt.timedelta(seconds=self.settings.delivery_lease_seconds)
        claimed = []
        async with self.store.begin() as conn:
            for row in (await conn.execute(query)).all():
                # Re-checked: another instance may have recorded an attempt meanwhile.
                result = await conn.execute(
                    sa.update(_d).where(_d.c.id == row.id, _d.c.state.in_(outbox.PENDING), free,
                                        _d.c.attempts == row.attempts,
                                        _d.c.next_attempt_at <= now)
                    .values(lease_until=lease))
                if result.rowcount == 1:
                    claimed.append(row)
        return claimed

    async def _run_one(self, job: Any) -> None:
        try:
            await self._attempt(job)
        except Exception:
            log.exception("delivery=%s: recording the attempt failed; lease will expire", job.id)
        finally:
            self._slots.release()
            self.wake()  # the conversation's next reply may be due now

    async def _attempt(self, job: Any) -> None:
        body = chatlayer_body(job.recipient_id, job.verify_token, job.message)
        headers = {"Idempotency-Key": job.idempotency_key,
                   "User-Agent": "handover-connector/0.1"}
        started = time.perf_counter()
        status = None
        error = None
        response_headers = None
        try:
            # The whole exchange, not each phase, must end well inside the lease.
            async with asyncio.timeout(self.settings.delivery_timeout_seconds):
                response = await self.client.post(
                    job.channel_url, json=body, headers=headers,
                    timeout=self.settings.delivery_timeout_seconds)
            status, response_headers = response.status_code, response.headers
        except (httpx.TimeoutException, TimeoutError):
            error = "timeout"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: connection failed"
        duration_ms = (time.perf_counter() - started) * 1000
        outcome = classify(status, error, response_headers)
        await self._record(job, outcome, duration_ms)

    async def _record(self, job: Any, outcome: Outcome, duration_ms: float) -> None:
        now = utcnow()
        attempt = job.attempts + 1
        values: dict[str, Any] = {"attempts": attempt, "last_status": outcome.status,
                                  "last_error": outcome.error, "lease_until": None,
                                  "updated_at": now, "state": outcome.state}
        delay = None
        if outcome.state == "delivered":
            values["delivered_at"] = now
        elif outcome.state == "retrying":
            delay = (outcome.retry_after if outcome.retry_after is not None
                     else backoff(self.settings, await self._attempts_since_resend(job) + 1))
            # Honoured, but never past the give-up horizon (nor an overflowing date).
            delay = min(delay, self.settings.retry_give_up_seconds)
            give_up_at = job.retry_since + dt.timedelta(seconds=self.settings.retry_give_up_seconds)
            if now + dt.timedelta(seconds=delay) > give_up_at:
                values["state"] = "failed"
                values["last_error"] = f"gave up after {attempt} attempts: {outcome.error}"
                delay = None
            else:
                values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
        async with self.store.transaction() as tx:
            result = await tx.conn.execute(
                sa.update(_d).where(_d.c.id == job.id, _d.c.state.in_(outbox.PENDING),
                                    _d.c.attempts == job.attempts).values(**values))
            if result.rowcount != 1:
                return  # someone else recorded this attempt (our lease had run out)
            await tx.conn.execute(sa.insert(_attempts).values(
                delivery_id=job.id, attempt=attempt, at=now, status_code=outcome.status,
                error=outcome.error, duration_ms=round(duration_ms, 2),
                outcome=values["state"]))
            await self._emit(tx, job, {**job._mapping, **values})
        log.info(
            "delivery=%s message=%s attempt=%s outcome=%s status=%s error=%s duration_ms=%.1f"
            " next_in=%s target=%s", job.id, job.message_id, attempt, values["state"],
            outcome.status, values["last_error"], duration_ms,
            f"{delay:.1f}s" if delay is not None else "-", redact_url(job.channel_url))

    async def _attempts_since_resend(self, job: Any) -> int:
        """A manual resend starts the backoff over (the attempt count keeps growing)."""
        async with self.store.read() as conn:
            return (await conn.execute(
                sa.select(sa.func.count()).select_from(_attempts)
                .where(_attempts.c.delivery_id == job.id, _attempts.c.at >= job.retry_since)
            )).scalar_one()

    async def _emit(self, tx: Any, job: Any, row: dict[str, Any]) -> None:
        if job.ticket_id is None:
            return
        ticket = await tickets.load(tx.conn, job.ticket_id)
        if ticket is None:
            return
        aud = tickets.audience(ticket)
        tx.emit(Event("delivery.updated", {
            "ticket": job.ticket_id, "message_id": job.message_id,
            "delivery": outbox.state_dict(row)}, job.ticket_id, **aud))
