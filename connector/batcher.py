"""Group commit for webhook ingest.

Concurrent requests hand their validated event to one writer task, which
writes everything that is waiting in a single transaction and then answers
each request. One commit (one fsync) serves many events, and each request
still gets its 2xx only after its event is durable.

If a batch fails, its events are retried one per transaction, so one bad event
cannot take others down with it; that event's request gets the error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from connector import ingest
from connector.ingest import Inbound, Result
from connector.store import Store, Tx

log = logging.getLogger("connector.ingest")

_Item = tuple[Inbound, asyncio.Future[Result]]


class IngestWriter:
    def __init__(self, store: Store, *, dedupe_window: float, batch_max: int) -> None:
        self.store = store
        self.window = dt.timedelta(seconds=dedupe_window)
        self.batch_max = batch_max
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self) -> None:
        """Finish everything already accepted, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def submit(self, inbound: Inbound) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((inbound, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Item]) -> None:
        try:
            async with self.store.transaction() as tx:
                results = [await self._apply(tx, inbound) for inbound, _ in batch]
        except Exception:
            if len(batch) == 1:
                inbound, future = batch[0]
                log.exception("ingest: writing event %s failed", inbound.event)
                if not future.done():
                    future.set_exception(IngestFailed("could not store the event"))
                return
            for item in batch:  # isolate the culprit
                await self._write([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _apply(self, tx: Tx, inbound: Inbound) -> Result:
        return await ingest.apply(tx, inbound, self.window)


class IngestFailed(Exception):
    pass
