"""Group commit for webhook ingest.

Concurrent requests hand their validated event to one writer task, which
writes everything that is waiting in a single transaction and then answers
each request. One commit (one fsync) serves many events, and each request
still gets its 2xx only after its event is durable.

The batch is written by synchronous code (`ingest_write`) in one hop: on
SQLite, a dedicated thread with its own connection; elsewhere, `run_sync` on
the async engine. If a batch fails, its events are retried one per
transaction, so one bad event cannot take others down with it; that event's
request gets the error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from connector import ingest_write
from connector.db import create_sync_engine
from connector.ingest import Inbound, Result
from connector.settings import Settings
from connector.store import Store, SyncTx

log = logging.getLogger("connector.ingest")

_Item = tuple[Inbound, asyncio.Future[Result]]


class IngestFailed(Exception):
    pass


class IngestWriter:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.window = dt.timedelta(seconds=settings.dedupe_window_seconds)
        self.batch_max = settings.ingest_batch_max
        self._sync: sa.Engine | None = create_sync_engine(settings) if settings.is_sqlite else None
        self._thread = ThreadPoolExecutor(1, "ingest-writer") if self._sync else None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self) -> None:
        """Finish everything already accepted, then stop."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

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
            except Exception:  # the writer must outlive any one batch
                log.exception("ingest: writing a batch failed")
            finally:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(IngestFailed("could not store the event"))
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Item]) -> None:
        inbounds = [inbound for inbound, _ in batch]
        try:
            results, tx = await self._transact(inbounds)
        except Exception:
            if len(batch) == 1:
                log.exception("ingest: writing event %s failed", inbounds[0].event)
                return  # _run fails its future: nothing of it was stored
            for item in batch:  # isolate the culprit
                await self._write([item])
            return
        # Committed: answer first, so nothing after this can leave a stored event unanswered.
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        try:
            await self.store.after_commit(tx)
        except Exception:
            # Live consoles miss a push but not the event: it is stored, and the hub
            # fills cursor gaps from the database.
            log.exception("ingest: publishing committed events failed")

    async def _transact(self, batch: list[Inbound]) -> tuple[list[Result], SyncTx]:
        if self._sync is not None:
            loop = asyncio.get_running_loop()
            async with self.store.writing():
                return await loop.run_in_executor(self._thread, self._write_sync, batch)
        async with self.store.begin() as conn:
            return await conn.run_sync(ingest_write.write, batch, self.window)

    def _write_sync(self, batch: list[Inbound]) -> tuple[list[Result], SyncTx]:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return ingest_write.write(conn, batch, self.window)
