"""Group commit for webhook ingest.

Concurrent requests hand their validated event to one writer, which writes
everything that is waiting in a single transaction and then answers each
request. One commit (one fsync) serves many events, and each request still
gets its 2xx only after its event is durable.

The batches are written by a child process (`connector.ingest.process`) so
that the writing does not compete with the event loop for the interpreter
lock. On SQLite the writer holds the process's write turn (`Store.writing`)
while a batch is in the child and gives it back between batches whenever
another writer (a reply, a claim) queues for it, so those wait for one batch
at most; two batches are in flight. On PostgreSQL `ingest_concurrency`
batches are in flight, and the child writes them at once, each in its own
transaction on a connection it holds (`direct`, `pg_child`): row locks keep
them apart as they keep instances apart (`apply` locks conversations in key
order, the stream counter last). If a batch fails, its events are retried one
per transaction, so one bad event cannot take others down with it; that
event's request gets the error.

The committed batches' stream events are published in commit order by one
task, after their requests were answered.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time

from connector.ingest.inbound import Inbound, Result
from connector.ingest.process import WriterGone, WriterProcess
from connector.metrics import Metrics
from connector.realtime.stream import Event
from connector.settings import Settings
from connector.storage import outage
from connector.storage.store import Store

log = logging.getLogger("connector.ingest")

_Item = tuple[Inbound, asyncio.Future[Result]]
#: SQLite: batches sent to the writer process before the first of them is answered.
PIPELINE = 2


class IngestFailed(Exception):
    """The event was not stored this time; the same event may be sent again."""


class IngestRefused(Exception):
    """The event can never be stored (see `Result` status `rejected`)."""


class IngestWriter:
    def __init__(self, store: Store, settings: Settings, metrics: Metrics | None = None,
                 ) -> None:
        self.store = store
        #: Batch sizes and commit times, counted here for the writer process too.
        self.metrics = metrics if metrics is not None else Metrics()
        self.window = dt.timedelta(seconds=settings.dedupe_window_seconds)
        self.batch_max = settings.ingest_batch_max
        self._process = WriterProcess(settings)
        #: Batches sent to the writer process before the first of them is answered.
        self.pipeline = PIPELINE if settings.is_sqlite else settings.ingest_concurrency
        #: Whether the child writes the batches in flight at once (PostgreSQL): then the
        #: waiting events are shared among them, and each is timed from its sending.
        self.concurrent = not settings.is_sqlite
        self._pending: collections.deque[_Item] = collections.deque()
        self._wake = asyncio.Event()
        self._committed: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._unanswered = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._process.start()
        self._tasks = [asyncio.create_task(self._run(), name="ingest-writer"),
                       asyncio.create_task(self._publish(), name="ingest-publisher")]

    async def stop(self) -> None:
        """Finish everything already accepted, then stop."""
        await self._idle.wait()
        await self._committed.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._process.stop()

    async def submit(self, inbound: Inbound) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._unanswered += 1
        self._idle.clear()
        self._pending.append((inbound, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                try:
                    async with self.store.writing():
                        await self._through_child(self._process)
                except Exception as exc:  # the writer must outlive any one batch
                    outage.failed(log, "ingest: writing a batch", exc)

    async def _through_child(self, child: WriterProcess) -> None:
        """Batch after batch while events wait (and, on SQLite, no other writer does),
        with up to `pipeline` batches sent before the oldest is answered.

        Batches in flight keep the child busy while this loop answers the
        requests of the batch just written and gathers the next one. If anything
        goes wrong while batches are in flight, the child is abandoned (killed and
        replaced) and those batches are answered with an error: an answer is only
        ever read for the request it belongs to.
        """
        in_flight: collections.deque[list[_Item]] = collections.deque()
        # When each batch in flight was sent: the SQLite child starts one when it is sent or
        # when it answered the one before, whichever is later (for `connector_ingest_*`).
        sent_at: collections.deque[float] = collections.deque()
        answered_at = 0.0
        sent = 0
        try:
            while True:
                # At least one batch per turn; no more once another writer waits.
                while (self._pending and len(in_flight) < self.pipeline
                       and not (sent and self.store.writers_waiting)):
                    sent += 1
                    batch = self._take(self.pipeline - len(in_flight))
                    in_flight.append(batch)
                    left_out = await child.send([inbound for inbound, _ in batch])
                    sent_at.append(time.perf_counter())
                    if left_out:
                        in_flight[-1] = self._refuse(batch, left_out)
                if not in_flight:
                    return
                results, events = await child.receive()
                sent_time = sent_at.popleft()
                started = sent_time if self.concurrent else max(sent_time, answered_at)
                answered_at = time.perf_counter()
                self.metrics.ingest_batch(len(in_flight[0]), answered_at - started)
                self._settle(in_flight.popleft(), results, events)
        except WriterGone:
            pass  # logged; the batches in flight are answered with an error below
        except BaseException:
            if in_flight:
                await child.abandon()
            raise
        finally:
            for batch in in_flight:  # nothing is known of these
                self._settle(batch, [None] * len(batch), [])

    def _refuse(self, batch: list[_Item], left_out: list[int]) -> list[_Item]:
        """Answer the events of `batch` at `left_out` as refused; the rest of the batch."""
        refused = set(left_out)
        self._settle([batch[n] for n in left_out], [Result("rejected")] * len(left_out), [])
        return [item for n, item in enumerate(batch) if n not in refused]

    def _take(self, free: int = 1) -> list[_Item]:
        """The next batch. When `concurrent`, with `free` batches that could still be sent,
        what waits is shared among them, so that they are written side by side."""
        size = self.batch_max
        if self.concurrent and free > 1:
            size = min(size, -(-len(self._pending) // free))
        batch: list[_Item] = []
        while self._pending and len(batch) < size:
            batch.append(self._pending.popleft())
        return batch

    def _settle(self, batch: list[_Item], results: list[Result | None],
                events: list[Event]) -> None:
        """Answer a batch's requests, then queue its stream events."""
        if len(results) != len(batch):  # never leave a request unanswered
            log.error("ingest: %d answers for %d events", len(results), len(batch))
            results = [None] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if result is None:
                future.set_exception(IngestFailed("could not store the event"))
            elif result.status == "rejected":
                future.set_exception(IngestRefused("the event cannot be stored"))
            else:
                future.set_result(result)
        self._unanswered -= len(batch)
        if self._unanswered == 0:
            self._idle.set()
        if events:
            self._committed.put_nowait(events)

    async def _publish(self) -> None:
        while True:
            events = await self._committed.get()
            try:
                await self.store.publish(events)
            except Exception:
                # Live consoles miss a push but not the event: it is stored, and the hub
                # fills cursor gaps from the database.
                log.exception("ingest: publishing committed events failed")
            finally:
                self._committed.task_done()
