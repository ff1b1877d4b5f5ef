"""The ingest writer process on PostgreSQL: its main loop.

Same wire protocol and guarantees as the SQLite writer (`process`: frames of
`[seq, events]` in, one answer per request, in request order). Here the child
runs an event loop of its own and writes up to `ingest_concurrency` batches at
once on connections it holds (`direct.HeldConnections`); answers still leave
in the order their requests came, whatever order the batches commit in. The
server's event loop is left with HTTP: building rows, SQLAlchemy and the
driver's work run on this process's core.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from typing import Any

from connector.ingest import process
from connector.ingest.direct import HeldConnections
from connector.ingest.inbound import Inbound, Result
from connector.realtime.stream import Event
from connector.settings import Settings
from connector.storage import outage

log = logging.getLogger("connector.ingest")

_Answer = tuple[list[Result | None], list[Event]]


def serve(sock: socket.socket, settings: Settings) -> None:
    """The child's main function (`process._child`): until the server closes its end."""
    from connector.logs import setup_logging

    setup_logging(settings)
    with sock:
        try:  # the server's own loop (uvicorn[standard]), where the platform has it
            import uvloop
        except ImportError:
            asyncio.run(_serve(sock, settings))
        else:
            uvloop.run(_serve(sock, settings))


async def _serve(sock: socket.socket, settings: Settings) -> None:
    from connector.memory import freeze_startup_objects
    from connector.storage.db import create_engine

    engine = create_engine(settings)
    held = HeldConnections(engine, dt.timedelta(seconds=settings.dedupe_window_seconds))
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    slots = asyncio.Semaphore(settings.ingest_concurrency)
    #: Requests in arrival order: their seq, their events (None: unreadable), their task.
    queue: asyncio.Queue[tuple[int, list[Inbound | None], asyncio.Task[_Answer]] | None] = \
        asyncio.Queue()
    answering = asyncio.create_task(_answer_in_order(queue, writer))
    freeze_startup_objects()
    try:
        while (request := await _read(reader)) is not None:
            seq, items = request
            batch = process.rebuild(items)
            await slots.acquire()
            task = asyncio.create_task(_write(held, [b for b in batch if b is not None]))
            task.add_done_callback(lambda _: slots.release())
            queue.put_nowait((seq, batch, task))
    finally:
        queue.put_nowait(None)
        await answering
        await held.close()
        await engine.dispose()
        writer.close()


async def _write(held: HeldConnections, batch: list[Inbound]) -> _Answer:
    if not batch:
        return [], []
    try:
        return await held.write(batch)
    except Exception as exc:  # the database cannot be reached: nothing of it is stored
        outage.failed(log, "ingest: writing a batch", exc)
        return [None] * len(batch), []


async def _answer_in_order(queue: asyncio.Queue[Any], writer: asyncio.StreamWriter) -> None:
    while (item := await queue.get()) is not None:
        seq, batch, task = item
        results, events = await task
        writer.write(process.frame(process.answer(seq, batch, results, events)))
        await writer.drain()


async def _read(reader: asyncio.StreamReader) -> Any:
    """The next request, or None once the server closed its end."""
    try:
        return await process.read_frame(reader)
    except asyncio.IncompleteReadError:
        return None
