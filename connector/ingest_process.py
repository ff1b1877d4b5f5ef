"""The SQLite ingest writer, in a process of its own.

Writing a batch is CPU work in Python (building rows, SQLite's own work on
them) that would otherwise hold the interpreter lock the event loop needs to
answer requests: in one process the two took turns on one core. Here the
server validates each webhook, and a child process (`python -m
connector.ingest_process`) writes the batches on its own connection and
core, then answers; the server still answers the webhook only after that
answer, so a 2xx still means committed. Children are forked from
multiprocessing's fork server, which has this module imported already: a
child is ready in milliseconds, and one that dies is replaced as fast.

Wire format on a socket pair: frames of a 4-byte big-endian length and
orjson. Each request is
`[[source, integration_id, raw body], ...]` and each answer
`{"results": [...], "events": [...]}` with one result per event (`null` when
it could not be stored) and the stream events of the committed transactions
in commit order. The child writes a failed batch again one event per
transaction, so one bad event cannot take others down with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import multiprocessing
import multiprocessing.process
import socket
import struct
from typing import Any, BinaryIO, NoReturn

import orjson
import sqlalchemy as sa

from connector import ingest, ingest_write
from connector.ingest import Inbound, Result
from connector.settings import Settings
from connector.stream import Event

log = logging.getLogger("connector.ingest")

_LENGTH = struct.Struct(">I")


class WriterGone(Exception):
    """The writer process ended (or could not start) before it answered."""


# --- in the child ------------------------------------------------------------------------------

def _read(stream: BinaryIO) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    return orjson.loads(stream.read(size))


def _write(stream: BinaryIO, value: Any) -> None:
    data = orjson.dumps(value)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _inbound(source: str, integration_id: str, raw: str) -> Inbound:
    """Validated again here (cheaper than shipping the parsed models across)."""
    data = raw.encode()
    parse = ingest.parse_smartly if source == "smartly" else ingest.parse_chatlayer
    return parse(integration_id, orjson.loads(data), data)


def write_batch(engine: sa.Engine, batch: list[Inbound], window: dt.timedelta,
                ) -> tuple[list[Result | None], list[Event]]:
    """Write a batch in one transaction, or else each event in its own."""
    try:
        with engine.begin() as conn:
            results, tx = ingest_write.write(conn, batch, window)
        return list(results), tx.events
    except Exception:
        if len(batch) == 1:
            log.exception("ingest: writing event %s failed", batch[0].event)
            return [None], []
    out: list[Result | None] = []
    events: list[Event] = []
    for inbound in batch:  # isolate the culprit
        results, more = write_batch(engine, [inbound], window)
        out += results
        events += more
    return out, events


def _answer(results: list[Result | None], events: list[Event]) -> dict[str, Any]:
    return {
        "results": [None if r is None else [r.status, r.event_id, r.ticket_id, r.opened,
                                            r.messages] for r in results],
        "events": [[e.type, e.payload, e.ticket_id, e.public, e.user_ids, e.cursor]
                   for e in events],
    }


def serve(stdin: BinaryIO, stdout: BinaryIO, settings: Settings) -> None:
    from connector.db import create_sync_engine
    from connector.logs import setup_logging

    setup_logging(settings)
    engine = create_sync_engine(settings)
    window = dt.timedelta(seconds=settings.dedupe_window_seconds)
    try:
        while (request := _read(stdin)) is not None:
            batch: list[Inbound | None] = []
            for source, integration_id, raw in request:
                try:
                    batch.append(_inbound(source, integration_id, raw))
                except Exception:
                    log.exception("ingest: an event the server accepted does not parse")
                    batch.append(None)
            valid = [b for b in batch if b is not None]
            results, events = write_batch(engine, valid, window) if valid else ([], [])
            it = iter(results)
            _write(stdout, _answer([None if b is None else next(it) for b in batch], events))
    finally:
        engine.dispose()


def _child(sock: socket.socket, settings: Settings) -> None:
    """The child process's main function."""
    with sock, sock.makefile("rb") as reader, sock.makefile("wb") as writer:
        serve(reader, writer, settings)  # type: ignore[arg-type]


# --- in the server -----------------------------------------------------------------------------

class WriterProcess:
    """The server's end: one child, one batch in flight at a time, replaced when it dies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        proc = ctx.Process(target=_child, args=(theirs, self.settings),
                           name="connector-ingest-writer", daemon=True)
        try:
            # Blocks while the fork server starts (the first time) and forks.
            await asyncio.to_thread(proc.start)
        finally:
            theirs.close()
        self._proc = proc
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)

    async def stop(self) -> None:
        """End the child; call only with no batch in flight."""
        proc, writer, self._proc, self._writer = self._proc, self._writer, None, None
        if writer is not None:
            writer.close()  # end of input: the child finishes and exits
        if proc is not None:
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def send(self, batch: list[Inbound], *, in_flight: int = 0) -> None:
        """Queue `batch` for the child (answers come back in order, see `receive`).

        With nothing `in_flight`, a dead child is replaced first.
        """
        if not in_flight and (self._proc is None or not self._proc.is_alive()):
            await self.stop()
            await self.start()
        assert self._writer is not None
        data = orjson.dumps([[i.source, i.integration_id, i.raw] for i in batch])
        try:
            self._writer.write(_LENGTH.pack(len(data)) + data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            await self._gone(exc)

    async def receive(self) -> tuple[list[Result | None], list[Event]]:
        """The answer to the oldest batch sent; raises WriterGone if the child died."""
        assert self._reader is not None
        try:
            (size,) = _LENGTH.unpack(await self._reader.readexactly(_LENGTH.size))
            answer = orjson.loads(await self._reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            await self._gone(exc)
        results = [None if r is None else Result(r[0], r[1], r[2], r[3], r[4])
                   for r in answer["results"]]
        events = [Event(t, p, tid, public, uids, cursor)
                  for t, p, tid, public, uids, cursor in answer["events"]]
        return results, events

    async def write(self, batch: list[Inbound]) -> tuple[list[Result | None], list[Event]]:
        await self.send(batch)
        return await self.receive()

    async def _gone(self, exc: BaseException) -> NoReturn:
        log.error("ingest: the writer process ended (%s); starting another", exc)
        await self.stop()
        raise WriterGone from exc


