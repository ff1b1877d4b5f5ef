"""The ingest writer, in a process of its own.

Writing a batch is CPU work in Python (building rows, SQLAlchemy, the
driver, SQLite's own work on them) that would otherwise hold the interpreter
lock the event loop needs to answer requests: in one process the two took
turns on one core. Here the server validates each webhook, and a child
process writes the batches on its own connection and core, then answers; the
server still answers the webhook only after that answer, so a 2xx still means
committed. On SQLite the child writes one batch at a time on one connection
(`serve`); on PostgreSQL several at once (`pg_child`). Children are forked from
multiprocessing's fork server, which has this module imported already: a
child is ready in milliseconds, and one that dies is replaced as fast.

Wire format on a socket pair: frames of a 4-byte big-endian length and
orjson. Each request is `[seq, events]`, the events as `shipped` gives them
(the server validated them: the child takes their fields as they are, with
`Inbound(*fields)`), and
each answer `{"seq": seq, "results": [...], "events": [...]}` with one result
per event (`null` when it could not be stored this time) and the stream
events of the committed transactions in commit order, each with its frame
already serialised. The child writes a failed batch again one event per
transaction, so one bad event cannot take others down with it.

Every answer belongs to its own request: the server checks each answer's
`seq` against the oldest batch it sent, and on any protocol error (an answer
out of step, a frame it cannot read, a failure between sending and reading)
it kills the child and starts another, answering the batches in flight with
an error. It never reads an answer meant for an earlier request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import multiprocessing
import multiprocessing.process
import socket
import sqlite3
import struct
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, NoReturn

import orjson
import sqlalchemy as sa

from connector.ingest import apply
from connector.ingest.inbound import Inbound, Result
from connector.realtime.stream import Event
from connector.settings import Settings
from connector.storage import outage

log = logging.getLogger("connector.ingest")

_LENGTH = struct.Struct(">I")


class WriterGone(Exception):
    """The writer process ended (or could not start, or broke the protocol) before it
    answered; it has been stopped, and the next batch starts another."""


# --- in the child ------------------------------------------------------------------------------

def _framed(data: bytes) -> bytes:
    """One frame: the length of `data`, then `data`."""
    return _LENGTH.pack(len(data)) + data


def frame(value: Any) -> bytes:
    """`value` as one frame of JSON."""
    return _framed(orjson.dumps(value))


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next frame's value; raises `asyncio.IncompleteReadError` at the end of input
    (or within a frame), `orjson.JSONDecodeError` for a frame that is not JSON."""
    (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return orjson.loads(await reader.readexactly(size))


def rebuild(items: list[Any]) -> list[Inbound | None]:
    """A request's events as the child writes them; None for one that cannot be read
    (answered `rejected` by `answer`)."""
    batch: list[Inbound | None] = []
    for item in items:
        try:
            batch.append(Inbound(*item))
        except Exception:
            log.exception("ingest: an event from the server cannot be read")
            batch.append(None)
    return batch


def _read(stream: BinaryIO) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    return orjson.loads(stream.read(size))


def _write(stream: BinaryIO, value: Any) -> None:
    stream.write(frame(value))
    stream.flush()


def shipped(i: Inbound) -> list[Any]:
    """An event as the server sends it: its fields in order (the child does not validate
    again); an event not acted on stops at its raw body."""
    if not i.known:
        return [i.source, i.integration_id, i.event, i.fingerprint, i.raw]
    return [i.source, i.integration_id, i.event, i.fingerprint, i.raw, True, i.end_user_id,
            i.messages, i.context, i.lang, i.platform, i.handover, i.skill_id, i.category,
            i.reply, i.backfill, i.handover_context]


#: Failures that say nothing about the event itself: the same event may be written later.
_TRANSIENT = (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.InterfaceError,
              sa.exc.DisconnectionError, sa.exc.TimeoutError, OSError,
              # Raised as they are by the statements `bulk.Writer` runs on the raw cursor.
              sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.InterfaceError)


def write_batch(begin: Callable[[], AbstractContextManager[sa.Connection]],
                batch: list[Inbound], window: dt.timedelta,
                ) -> tuple[list[Result | None], list[Event]]:
    """Write a batch in one transaction (`begin()`), or else each event in its own.

    `begin()` starts a transaction on the writer's one connection and yields it: in
    the SQLite writer process, and on a held connection on PostgreSQL (`direct`).
    """
    try:
        with begin() as conn:
            results, tx = apply.write(conn, batch, window)
        return list(results), tx.events
    except Exception as exc:
        if len(batch) == 1:
            if isinstance(exc, _TRANSIENT):
                # A lost database is one rate-limited warning (`outage`), not a traceback.
                outage.failed(log, f"ingest: writing event {batch[0].event}", exc)
                return [None], []
            log.exception("ingest: event %s refused: it cannot be written", batch[0].event)
            return [Result("rejected")], []
    out: list[Result | None] = []
    events: list[Event] = []
    for inbound in batch:  # isolate the culprit
        results, more = write_batch(begin, [inbound], window)
        out += results
        events += more
    return out, events


def answer(seq: int, batch: list[Inbound | None], results: list[Result | None],
           events: list[Event]) -> dict[str, Any]:
    """The answer to request `seq`: `results` are those of the readable events of `batch`
    in order; an unreadable one (None) is `rejected`."""
    it = iter(results)
    merged = [Result("rejected") if b is None else next(it) for b in batch]
    return {
        "seq": seq,
        "results": [None if r is None else [r.status, r.event_id, r.ticket_id, r.opened,
                                            r.messages] for r in merged],
        # Rendered here, once: the server only forwards the text to consoles.
        "events": [[e.text(), e.type, e.ticket_id, e.public, e.user_ids, e.cursor]
                   for e in events],
    }


def writer_connection(engine: sa.Engine) -> sa.Connection:
    """The SQLite writer's one connection for its whole life (no pool checkout and reset
    per batch). A batch's multi-row statements keep a statement journal (to undo one
    statement alone): here in memory, so that no temporary file is created and unlinked
    per transaction. It holds the pages a batch changes: a few MiB at `ingest_batch_max`."""
    conn = engine.connect()
    conn.connection.dbapi_connection.execute("PRAGMA temp_store=MEMORY")  # type: ignore[union-attr]
    return conn


def serve(stdin: BinaryIO, stdout: BinaryIO, settings: Settings) -> None:
    from connector.logs import setup_logging
    from connector.memory import freeze_startup_objects
    from connector.storage.db import create_sync_engine

    setup_logging(settings)
    engine = create_sync_engine(settings)
    window = dt.timedelta(seconds=settings.dedupe_window_seconds)
    conn = writer_connection(engine)
    freeze_startup_objects()

    @contextlib.contextmanager
    def begin() -> Iterator[sa.Connection]:
        with conn.begin():
            yield conn

    try:
        while (request := _read(stdin)) is not None:
            seq, items = request
            batch = rebuild(items)
            valid = [b for b in batch if b is not None]
            results, events = write_batch(begin, valid, window) if valid else ([], [])
            _write(stdout, answer(seq, batch, results, events))
    finally:
        conn.close()
        engine.dispose()


def _child(sock: socket.socket, settings: Settings) -> None:
    """The child process's main function."""
    if not settings.is_sqlite:
        from connector.ingest import pg_child

        pg_child.serve(sock, settings)
        return
    with sock, sock.makefile("rb") as reader, sock.makefile("wb") as writer:
        serve(reader, writer, settings)  # type: ignore[arg-type]


# --- in the server -----------------------------------------------------------------------------

def encode(seq: int, batch: list[Inbound]) -> tuple[bytes, list[int]]:
    """The request frame for `batch`, and the indexes of the events it leaves out because
    they cannot be encoded (validation refuses such input; this is the last guard)."""
    try:
        return frame([seq, [shipped(i) for i in batch]]), []
    except (TypeError, orjson.JSONEncodeError):
        pass
    parts: list[bytes] = []
    left_out: list[int] = []
    for n, inbound in enumerate(batch):
        try:
            parts.append(orjson.dumps(shipped(inbound)))
        except (TypeError, orjson.JSONEncodeError):
            log.error("ingest: event %s cannot be sent to the writer; refused", inbound.event)
            left_out.append(n)
    return _framed(b"[%d,[%s]]" % (seq, b",".join(parts))), left_out


class WriterProcess:
    """The server's end: one child, answers matched to requests by `seq`, the child replaced
    when it dies or breaks the protocol."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._seq = 0
        #: The seq of every batch sent and not yet answered, oldest first.
        self._awaited: collections.deque[int] = collections.deque()

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

    async def stop(self, *, kill: bool = False) -> None:
        """End the child: once it has answered what it has (call with no batch in flight),
        or at once with `kill` (its unread answers are lost with its socket)."""
        proc, writer, self._proc, self._writer = self._proc, self._writer, None, None
        self._reader = None
        self._awaited.clear()
        if proc is not None and kill and proc.is_alive():
            proc.kill()
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

    def _ready(self) -> bool:
        """Whether the child can take a batch. With nothing in flight (so nothing left to
        read), an end of file on its socket means it is gone: seen as soon as it died, where
        `is_alive` learns it only once the fork server has reaped it."""
        if self._proc is None or self._reader is None or not self._proc.is_alive():
            return False
        return not self._reader.at_eof()

    async def send(self, batch: list[Inbound]) -> list[int]:
        """Queue `batch` for the child (answers come back in order, see `receive`); returns
        the indexes of the events left out (see `encode`), which get no answer.

        With nothing in flight, a dead child is replaced first.
        """
        if not self._awaited and not self._ready():
            await self.stop()
            await self.start()
        assert self._writer is not None
        self._seq += 1
        frame, left_out = encode(self._seq, batch)
        self._awaited.append(self._seq)
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            await self._gone(exc)
        return left_out

    async def receive(self) -> tuple[list[Result | None], list[Event]]:
        """The answer to the oldest batch sent; raises WriterGone if the child died or
        answered out of step."""
        assert self._reader is not None
        try:
            got = await read_frame(self._reader)
            expected = self._awaited.popleft()
            if got["seq"] != expected:
                raise ProtocolError(f"answer {got['seq']} where {expected} was due")
            results = [None if r is None else Result(r[0], r[1], r[2], r[3], r[4])
                       for r in got["results"]]
            events = [Event.rendered(*e) for e in got["events"]]
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ProtocolError,
                orjson.JSONDecodeError, LookupError, TypeError, ValueError) as exc:
            await self._gone(exc)
        return results, events

    async def abandon(self) -> None:
        """Kill the child, whose answers in flight can no longer be matched to requests
        (the caller answers those with an error); the next `send` starts another."""
        if self._proc is not None:
            log.error("ingest: abandoning the writer process with %d batches in flight; "
                      "starting another", len(self._awaited))
            await self.stop(kill=True)

    async def _gone(self, exc: BaseException) -> NoReturn:
        log.error("ingest: the writer process ended or broke the protocol (%s); "
                  "starting another", exc)
        await self.stop(kill=True)
        raise WriterGone from exc


class ProtocolError(Exception):
    """An answer that does not belong to the request it should answer."""
