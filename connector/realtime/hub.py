"""Live stream fan-out to connected consoles.

Protocol: each WebSocket text message is either one frame object
(`{"type", "cursor", ...}`) or a JSON array of such frames, to be applied in
array order. Stored events are coalesced: a console's writer sends everything
waiting for it as one message (see `connector.realtime.feed` for the limits;
more follows in the next message), both when
replaying from the database and live. `hello`, `resync` and `heartbeat` are
always sent alone, as single objects. Every frame type has its constructor in
`connector.domain.events`.

Ordering and completeness, per process:

* The hub consumes the bus and forwards events strictly in cursor order with
  no gap: if a batch skips a cursor, before its first event or between two of
  them (another transaction's publish is late, this instance's or another's),
  the missing cursors are read from the stream table, where they are already
  committed because cursors are handed out in commit order. Events at or below
  `delivered_upto` are dropped as duplicates.
* A client resuming after cursor N is registered with the hub *before* it
  reads the stored events after N, then sends its pending live events skipping
  every cursor it already sent. So everything committed before registration
  comes from the database, everything after from the pending list, and the
  overlap is removed by cursor: no gap, no duplicate, cursors strictly
  increasing within and across messages.
* A client's pending list is bounded (`ws_queue_max`). When it overflows (the
  server is behind, not necessarily the console) it is emptied and the client
  *catches up*: it stays registered, its writer reads the stored events after
  the last cursor it sent, then goes on with live events as above. Nobody is
  disconnected for it.
* Slowness is judged on the socket: a console whose single send has not
  completed within `ws_send_timeout_seconds` (it stopped reading) is closed
  with 4008 and resumes from its cursor when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from connector.accounts import auth
from connector.domain.events import HEARTBEAT
from connector.domain.roles import STAFF
from connector.realtime import stream
from connector.realtime.bus import EventBus
from connector.realtime.presence import Presence
from connector.realtime.stream import Event
from connector.settings import Settings
from connector.storage import outage
from connector.storage.store import Store

log = logging.getLogger("connector.realtime")

CLOSE_UNAUTHORIZED = 4401
#: The user's role changed: reconnect (the new socket gets the new role's view).
CLOSE_ROLE_CHANGED = 4003
CLOSE_TOO_SLOW = 4008
CLOSE_BAD_FRAME = 4400
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009


TOO_SLOW = "client too slow; reconnect with your cursor"

#: How often the hub reads stored events no publish brought; more often while the
#: bus is down, so that events of other instances still arrive within a second.
CATCH_UP_SECONDS = 2.0
CATCH_UP_BUS_DOWN_SECONDS = 0.5
#: Consoles are offered live events at most once per this many seconds: events that
#: arrive sooner after an offer are held and offered together when it has passed. An
#: event arriving after a quiet moment goes out at once; under load each console's
#: writer wakes, and writes to its socket, once per period instead of once per commit
#: (the write and the wake-up, not the event, are what fan-out costs).
OFFER_PERIOD_SECONDS = 0.010
#: How often the sockets' sessions are checked, and their activity recorded.
SESSION_CHECK_SECONDS = 1.0
SESSION_TOUCH_SECONDS = 30.0


class Batch(list[Event]):
    """Events forwarded together, in cursor order. Every client that sees all of them
    is offered this same object, so the messages they make are built once
    (`messages`, filled by the first console writer that sends the batch)."""

    __slots__ = ("messages",)

    def __init__(self, events: list[Event]) -> None:
        super().__init__(events)
        self.messages: list[str] | None = None


@dataclass(eq=False)
class Client:
    principal: auth.Principal
    queue_max: int
    #: Live events for the writer, in cursor order, as offered (chunks, each a `Batch`
    #: or a list); `pending_count` events in all, at most `queue_max`.
    pending: list[list[Event]] = field(default_factory=list)
    pending_count: int = 0
    #: `pending` overflowed and was emptied: the writer must read the database first.
    behind: bool = False
    #: How many times `pending` overflowed (the client caught up from the database).
    overflows: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = 1000
    close_reason: str = ""
    #: When the client was last sent something (heartbeats go to idle clients only).
    active_at: float = field(default_factory=time.monotonic)
    #: When the send to the socket in progress started; None between sends.
    sending_since: float | None = None

    def offer(self, events: list[Event]) -> None:
        """Queue the events (in cursor order) this client may see, and wake its writer.

        Events dropped on overflow are stored: the writer reads them back.
        """
        if self.closed.is_set():
            return
        user_id, role = self.principal.user_id, self.principal.role
        visible = events if role in STAFF else [
            e for e in events if e is HEARTBEAT or e.visible_to(user_id, role)]
        if not visible:
            return
        if self.pending_count + len(visible) > self.queue_max:
            if not self.behind:
                self.overflows += 1
                log.info("realtime: a console of %s fell over %d events behind; it catches "
                         "up from the database", self.principal.username, self.queue_max)
            self.take()
            self.behind = True
        else:
            self.pending.append(visible)
            self.pending_count += len(visible)
        self.wake.set()

    def take(self) -> list[list[Event]]:
        """Empty `pending`, returning its chunks."""
        chunks, self.pending, self.pending_count = self.pending, [], 0
        return chunks

    def close(self, code: int, reason: str) -> None:
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()
            self.take()
            self.wake.set()


class Hub:
    def __init__(self, store: Store, bus: EventBus, settings: Settings,
                 presence: Presence | None = None) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.presence = presence or Presence(store)
        self.clients: set[Client] = set()
        #: Called with every batch of events forwarded, in cursor order (the router's
        #: wake-up); must not block or raise.
        self.listeners: list[Callable[[list[Event]], None]] = []
        self.delivered_upto = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self._forwarding = asyncio.Lock()
        #: Events forwarded but not yet offered to clients (see `OFFER_PERIOD_SECONDS`),
        #: and when clients were last offered events (event loop time).
        self._held: Batch | None = None
        self._offered_at = -OFFER_PERIOD_SECONDS

    async def start(self) -> None:
        async with self.store.read() as conn:
            self.delivered_upto = await stream.last_cursor(conn)
        self._tasks = [asyncio.create_task(self._consume(), name="hub-consume"),
                       asyncio.create_task(self._poll_stream(), name="hub-poll"),
                       asyncio.create_task(self._watch_sessions(), name="hub-sessions"),
                       asyncio.create_task(self._heartbeats(), name="hub-heartbeats"),
                       asyncio.create_task(self._watch_sends(), name="hub-sends"),
                       asyncio.create_task(self.presence.run(), name="hub-presence")]
        await asyncio.wait_for(self._ready.wait(), 5)

    async def stop(self) -> None:
        for client in list(self.clients):
            client.close(1001, "server shutting down")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.presence.leave()

    @contextlib.asynccontextmanager
    async def attach(self, client: Client) -> AsyncIterator[None]:
        """Register the client for live events while inside; its user's presence
        (`realtime.presence`) is recorded first and cleared after."""
        user_id = client.principal.user_id
        self.clients.add(client)
        try:
            await self.presence.connected(user_id)
            yield
        finally:
            self.clients.discard(client)
            with contextlib.suppress(Exception):
                await self.presence.disconnected(user_id)

    def close_user(self, user_id: int, code: int, reason: str) -> None:
        for client in list(self.clients):
            if client.principal.user_id == user_id:
                client.close(code, reason)

    def close_session(self, session_id: str) -> None:
        for client in list(self.clients):
            if client.principal.session_id == session_id:
                client.close(CLOSE_UNAUTHORIZED, "signed out")

    async def _consume(self) -> None:
        subscription = self.bus.subscribe()
        self._ready.set()
        async for batch in subscription:
            try:
                await self._forward(batch)
            except Exception as exc:
                outage.failed(log, "realtime: forwarding events", exc)

    async def _forward(self, batch: list[Event]) -> None:
        """Offer events to clients in cursor order; one forward at a time (the bus's and
        the catch-up's: a gap read awaits, and a later forward must not overtake it)."""
        async with self._forwarding:
            await self._forward_in_order(batch)

    async def _forward_in_order(self, batch: list[Event]) -> None:
        """Forward the events of `batch` beyond `delivered_upto` and every stored event
        before them: a batch may have a gap before its first cursor or between two of its
        cursors (a publish of several transactions, of this instance or another, while a
        transaction in between is published later); the gap is read from the database."""
        by_cursor = {e.cursor: e for e in batch if e.cursor > self.delivered_upto}
        if not by_cursor:
            return
        last = max(by_cursor)
        if last - self.delivered_upto > len(by_cursor):
            async with self.store.read() as conn:
                stored = await stream.read_after(conn, self.delivered_upto,
                                                 limit=last - self.delivered_upto)
            by_cursor = {**{e.cursor: e for e in stored if e.cursor <= last}, **by_cursor}
            if len(by_cursor) < last - self.delivered_upto:  # never, while cursors are dense
                log.error("realtime: stream cursors after %d up to %d are not all stored",
                          self.delivered_upto, last)
        fresh = Batch([by_cursor[cursor] for cursor in sorted(by_cursor)])
        self.delivered_upto = fresh[-1].cursor
        self._offer(fresh)
        for listener in self.listeners:
            listener(fresh)

    def _offer(self, fresh: Batch) -> None:
        """Offer `fresh` to the clients now, or hold it until `OFFER_PERIOD_SECONDS` have
        passed since the last offer. Held events stay in cursor order, and a client that
        registers meanwhile gets them too (skipping by cursor those it read from the
        database): no gap, no duplicate."""
        if self._held is not None:
            self._held.extend(fresh)
            return
        loop = asyncio.get_running_loop()
        due = self._offered_at + OFFER_PERIOD_SECONDS
        if loop.time() >= due:
            self._offer_now(fresh)
        else:
            self._held = fresh
            loop.call_at(due, self._offer_held)

    def _offer_held(self) -> None:
        held, self._held = self._held, None
        if held:
            self._offer_now(held)

    def _offer_now(self, batch: Batch) -> None:
        self._offered_at = asyncio.get_running_loop().time()
        for client in list(self.clients):
            client.offer(batch)

    async def _heartbeats(self) -> None:
        """One timer for every client: a heartbeat to each that was idle a whole period."""
        period = self.settings.ws_heartbeat_seconds
        while True:
            await asyncio.sleep(period / 4)
            idle_since = time.monotonic() - period
            for client in list(self.clients):
                if client.active_at <= idle_since and not client.pending:
                    client.active_at = time.monotonic()
                    client.offer([HEARTBEAT])

    async def _watch_sends(self) -> None:
        """Close each client whose send has not completed within the send timeout.

        A send waits only while the socket's buffers are full: the console is not
        reading. One timer for every client, nothing per send.
        """
        limit = self.settings.ws_send_timeout_seconds
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            stuck_since = time.monotonic() - limit
            for client in list(self.clients):
                since = client.sending_since
                if since is not None and since <= stuck_since:
                    client.close(CLOSE_TOO_SLOW, TOO_SLOW)

    async def _catch_up(self) -> None:
        """Forward stored events that no publish brought (a failed or lost publish).

        Normally a gap is noticed when the next event arrives; this bounds the
        wait when no next event comes.
        """
        async with self.store.read() as conn:
            missed = await stream.read_after(conn, self.delivered_upto, limit=500)
        if missed:
            await self._forward(missed)

    async def _poll_stream(self) -> None:
        """Catch up from the stored stream every `CATCH_UP_SECONDS`, and every
        `CATCH_UP_BUS_DOWN_SECONDS` while the bus is down (then it is how events of
        other instances arrive)."""
        waited = 0.0
        while True:
            await asyncio.sleep(CATCH_UP_BUS_DOWN_SECONDS)
            waited += CATCH_UP_BUS_DOWN_SECONDS
            if waited < CATCH_UP_SECONDS and self.bus.status != "down":
                continue
            waited = 0.0
            try:
                await self._catch_up()
            except Exception as exc:
                outage.failed(log, "realtime: reading the stored stream", exc)

    async def _watch_sessions(self, every: float = SESSION_CHECK_SECONDS) -> None:
        """Close sockets whose session ended (logout elsewhere, expiry, user disabled,
        password changed) or whose user's role changed, wherever that happened: the
        database says, so every instance closes them within `every` seconds (plus the
        query)."""
        beat = 0.0
        while True:
            await asyncio.sleep(every)
            beat += every
            sessions = {c.principal.session_id for c in self.clients}
            try:
                async with self.store.read() as conn:
                    dead = await auth.dead_sessions(conn, self.settings, sessions)
                    roles = await auth.session_roles(conn, sessions - dead)
                if beat >= SESSION_TOUCH_SECONDS and sessions - dead:
                    beat = 0.0
                    async with self.store.begin() as conn:
                        await auth.touch(conn, sessions - dead)
            except Exception as exc:
                outage.failed(log, "realtime: checking sessions", exc)
                continue
            for client in list(self.clients):
                if client.principal.session_id in dead:
                    client.close(CLOSE_UNAUTHORIZED, "session ended")
                elif roles.get(client.principal.session_id, client.principal.role) \
                        != client.principal.role:
                    client.close(CLOSE_ROLE_CHANGED, "role changed; reconnect")
