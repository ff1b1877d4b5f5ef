"""Live stream fan-out to connected consoles.

Ordering and completeness, per process:

* The hub consumes the bus and forwards events strictly in cursor order with
  no gap: if a batch arrives with a cursor beyond `delivered_upto + 1` (another
  transaction's publish is late, or another instance's), the missing range is
  read from the stream table, where it is already committed because cursors
  are handed out in commit order. Events at or below `delivered_upto` are
  dropped as duplicates.
* A client resuming after cursor N is registered with the hub *before* it
  reads the stored events after N, then drains its live queue skipping every
  cursor it already sent. So everything committed before registration comes
  from the database, everything after from the queue, and the overlap is
  removed by cursor: no gap, no duplicate.
* Each client has a bounded queue; a client that stops reading is
  disconnected (close code 4008) instead of slowing the others, and resumes
  from its cursor when it reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from connector import auth, stream
from connector.bus import EventBus
from connector.settings import Settings
from connector.store import Store
from connector.stream import Event

log = logging.getLogger("connector.realtime")

CLOSE_UNAUTHORIZED = 4401
#: The user's role changed: reconnect (the new socket gets the new role's view).
CLOSE_ROLE_CHANGED = 4003
CLOSE_TOO_SLOW = 4008
CLOSE_BAD_FRAME = 4400
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009


#: Put in an idle client's queue by the hub's one heartbeat timer.
HEARTBEAT = Event("heartbeat", {})


@dataclass(eq=False)
class Client:
    principal: auth.Principal
    queue_max: int
    queue: asyncio.Queue[Event | None] = field(init=False)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = 1000
    close_reason: str = ""
    #: When the client was last sent something (heartbeats go to idle clients only).
    active_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_max)

    def offer(self, event: Event) -> None:
        if self.closed.is_set() or not (event is HEARTBEAT or event.visible_to(
                self.principal.user_id, self.principal.role)):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close(CLOSE_TOO_SLOW, "client too slow; reconnect with your cursor")

    def close(self, code: int, reason: str) -> None:
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)


class Hub:
    def __init__(self, store: Store, bus: EventBus, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.clients: set[Client] = set()
        self._online: collections.Counter[int] = collections.Counter()
        self.delivered_upto = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()

    async def start(self) -> None:
        async with self.store.read() as conn:
            self.delivered_upto = await stream.last_cursor(conn)
        self._tasks = [asyncio.create_task(self._consume(), name="hub-consume"),
                       asyncio.create_task(self._watch_sessions(), name="hub-sessions"),
                       asyncio.create_task(self._heartbeats(), name="hub-heartbeats")]
        await asyncio.wait_for(self._ready.wait(), 5)

    async def stop(self) -> None:
        for client in list(self.clients):
            client.close(1001, "server shutting down")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def online_user_ids(self) -> set[int]:
        return set(self._online)

    @contextlib.asynccontextmanager
    async def attach(self, client: Client) -> AsyncIterator[None]:
        user_id = client.principal.user_id
        self.clients.add(client)
        self._online[user_id] += 1
        if self._online[user_id] == 1:
            await self._presence(client.principal, True)
        try:
            yield
        finally:
            self.clients.discard(client)
            self._online[user_id] -= 1
            if self._online[user_id] <= 0:
                del self._online[user_id]
                with contextlib.suppress(Exception):
                    await self._presence(client.principal, False)

    def close_user(self, user_id: int, code: int, reason: str) -> None:
        for client in list(self.clients):
            if client.principal.user_id == user_id:
                client.close(code, reason)

    def close_session(self, session_id: str) -> None:
        for client in list(self.clients):
            if client.principal.session_id == session_id:
                client.close(CLOSE_UNAUTHORIZED, "signed out")

    async def _presence(self, principal: auth.Principal, online: bool) -> None:
        async with self.store.transaction() as tx:
            tx.emit(Event("presence", {"user": principal.username, "user_id": principal.user_id,
                                       "role": principal.role, "online": online}, public=True))

    async def _consume(self) -> None:
        subscription = self.bus.subscribe()
        self._ready.set()
        async for batch in subscription:
            try:
                await self._forward(batch)
            except Exception:
                log.exception("realtime: forwarding events failed")

    async def _forward(self, batch: list[Event]) -> None:
        batch = sorted(batch, key=lambda e: e.cursor)
        if batch and batch[0].cursor > self.delivered_upto + 1:
            async with self.store.read() as conn:
                missing = await stream.read_after(conn, self.delivered_upto,
                                                  limit=batch[0].cursor - self.delivered_upto - 1)
            batch = missing + batch
        for event in batch:
            if event.cursor <= self.delivered_upto:
                continue
            self.delivered_upto = event.cursor
            for client in list(self.clients):
                client.offer(event)

    async def _heartbeats(self) -> None:
        """One timer for every client: a heartbeat to each that was idle a whole period."""
        period = self.settings.ws_heartbeat_seconds
        while True:
            await asyncio.sleep(period / 4)
            idle_since = time.monotonic() - period
            for client in list(self.clients):
                if client.active_at <= idle_since and client.queue.empty():
                    client.active_at = time.monotonic()
                    client.offer(HEARTBEAT)

    async def _catch_up(self) -> None:
        """Forward stored events that no publish brought (a failed or lost publish).

        Normally a gap is noticed when the next event arrives; this bounds the
        wait when no next event comes.
        """
        async with self.store.read() as conn:
            missed = await stream.read_after(conn, self.delivered_upto, limit=500)
        if missed:
            await self._forward(missed)

    async def _watch_sessions(self, every: float = 2.0) -> None:
        """Close sockets whose session ended (logout elsewhere, expiry, user disabled)."""
        beat = 0.0
        while True:
            await asyncio.sleep(every)
            beat += every
            sessions = {c.principal.session_id for c in self.clients}
            try:
                await self._catch_up()
                async with self.store.read() as conn:
                    dead = await auth.dead_sessions(conn, self.settings, sessions)
                    roles = await auth.session_roles(conn, sessions - dead)
                if beat >= 30 and sessions - dead:
                    beat = 0.0
                    async with self.store.begin() as conn:
                        await auth.touch(conn, sessions - dead)
            except Exception:
                log.exception("realtime: session check failed")
                continue
            for client in list(self.clients):
                if client.principal.session_id in dead:
                    client.close(CLOSE_UNAUTHORIZED, "session ended")
                elif roles.get(client.principal.session_id, client.principal.role) \
                        != client.principal.role:
                    client.close(CLOSE_ROLE_CHANGED, "role changed; reconnect")


async def replay_then_live(hub: Hub, client: Client, after: int,
                           send: Callable[[str], Awaitable[None]]) -> None:
    """Send every visible event after `after`, then live events, until the client closes.

    The client must already be attached to the hub (see module docstring).
    `send` takes the frame as JSON text.
    """
    last_sent = after
    while True:
        async with hub.store.read() as conn:
            page = await stream.read_after(conn, last_sent, limit=500)
        for event in page:
            if event.visible_to(client.principal.user_id, client.principal.role):
                await send(event.text())
                client.active_at = time.monotonic()
            last_sent = event.cursor
        if len(page) < 500:
            break
    while not client.closed.is_set():
        event = await client.queue.get()
        if event is None:
            break
        if event is HEARTBEAT:
            await send(orjson.dumps({"type": "heartbeat", "cursor": last_sent}).decode())
            continue
        if event.cursor <= last_sent:
            continue
        await send(event.text())
        client.active_at = time.monotonic()
        last_sent = event.cursor


async def resume_point(hub: Hub, after: int | None) -> tuple[int, bool]:
    """Where a client starts: (cursor, resync needed).

    No `after`: from now. An `after` older than the kept stream (pruned), or
    ahead of it (from another database), cannot be resumed: the client is told
    to resync and starts from now.
    """
    async with hub.store.read() as conn:
        last = await stream.last_cursor(conn)
        oldest = await stream.oldest_kept(conn)
    if after is None:
        return last, False
    if after > last:
        return last, True
    first_kept = oldest if oldest is not None else last + 1
    if after < first_kept - 1:
        return last, True
    return after, False
