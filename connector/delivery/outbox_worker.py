"""What the outbox workers share: claiming due rows with a lease, and the loop that sends them.

An outbox table (reply `delivery`, event `webhook_delivery`) has `state`, `attempts`,
`next_attempt_at` and `lease_until`. A due row is claimed by a conditional UPDATE of its
lease (`claim_statement`): it must still be pending, unleased (or its lease run out), at
the attempt count it was read with, and due. Whoever's UPDATE matched sends it; if that
process dies before recording the outcome, the lease runs out and any instance claims it
again. `OutboxWorker` polls for due rows (or is woken), claims them in one write turn, and
sends each in its own task, at most `CONNECTOR_DELIVERY_CONCURRENCY` at a time.

What differs (which rows are due, in what order, what a job is, how it is sent and
recorded) is each worker's own: `delivery.worker`, `delivery.webhook_worker`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa

from connector.settings import Settings
from connector.storage import outage
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.store import Store, SyncTx

log = logging.getLogger("connector.delivery")

#: The time a statement compares with (`now`).
NOW = sa.bindparam("now", type_=UTCDateTime)



class _Job(Protocol):
    @property
    def id(self) -> int: ...


JobT = TypeVar("JobT", bound=_Job)


def free(table: sa.Table) -> sa.ColumnElement[bool]:
    """Its row is leased to no one, or its lease has run out."""
    return sa.or_(table.c.lease_until.is_(None), table.c.lease_until < NOW)


def claim_statement(table: sa.Table, pending: tuple[str, ...]) -> sa.Update:
    """Lease one row (`did`) `until`, re-checked at claim time: still pending, free, at the
    attempt count it was read with (`seen`) and due. One row changed means it is ours."""
    return sa.update(table).where(
        table.c.id == sa.bindparam("did"), table.c.state.in_(pending), free(table),
        table.c.attempts == sa.bindparam("seen"), table.c.next_attempt_at <= NOW).values(
        lease_until=sa.bindparam("until", type_=UTCDateTime))


class OutboxWorker(Generic[JobT]):
    """Claims due rows with a lease and sends each in a task, a slot each.

    A subclass gives the due query and claim statement, turns a claimed row into its job
    (`_job`) and sends and records it (`_attempt`).
    """

    #: How log lines name a failed claim ("delivery: claiming due deliveries").
    claiming_as = "delivery"
    #: How log lines name one job ("delivery=12: recording the attempt ...").
    job_as = "delivery"
    #: Whether a job whose attempt could not be recorded wakes the loop.
    wake_after_failure = True

    def __init__(self, store: Store, settings: Settings, due: sa.Select[Any],
                 claim: sa.Update) -> None:
        self.store = store
        self.settings = settings
        self._lease = dt.timedelta(seconds=settings.delivery_lease_seconds)
        self._due = due
        self._claim = claim
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
            except Exception as exc:
                outage.failed(log, f"{self.claiming_as}: claiming due deliveries", exc)
                claimed = []
            for job in claimed:
                await self._slots.acquire()
                self._spawn(job, slot_held=True)
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
            for task in pending:  # their leases run out; another run sends them again
                task.cancel()

    async def _claim_due(self) -> list[JobT]:
        """Claim what is due; the write turn is taken only when something is."""
        now = utcnow()
        async with self.store.read() as conn:
            due = (await conn.execute(self._due, {"now": now})).all()
        if not due:
            return []
        return await self.store.write(self._claim_sync, due, now)

    def _claim_sync(self, tx: SyncTx, due: list[Any], now: dt.datetime) -> list[JobT]:
        until = now + self._lease
        return [self._job(row) for row in due if tx.conn.execute(self._claim, {
            "did": row.id, "seen": row.attempts, "now": now, "until": until}).rowcount == 1]

    def _job(self, row: Any) -> JobT:
        """The job of a claimed row of the due query."""
        raise NotImplementedError

    def _spawn(self, job: JobT, *, slot_held: bool) -> None:
        task = asyncio.create_task(self._run_one(job, slot_held))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _run_one(self, job: JobT, slot_held: bool) -> None:
        if not slot_held:
            await self._slots.acquire()
        more = self.wake_after_failure
        try:
            more = await self._attempt(job)
        except Exception as exc:
            outage.failed(log, f"{self.job_as}={job.id}: recording the attempt (its lease will "
                          "expire and it is sent again)", exc)
        finally:
            self._slots.release()
            if more:
                self.wake()

    async def _attempt(self, job: JobT) -> bool:
        """Send `job` once and record the outcome; True when polling should look again at
        once (something may be due now that was not)."""
        raise NotImplementedError
