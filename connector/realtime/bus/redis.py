"""`redis://` and `rediss://`: the event bus between instances, over Redis pub/sub.

`CONNECTOR_BUS_URL=redis://[:password@]host:port/db` (`rediss://` for TLS). Every
instance publishes its committed stream events on one channel, named after the
database number (pub/sub ignores `db`, so two deployments sharing one Redis stay
apart by using different numbers), and forwards what the others publish to its
hub. Its own events go to its own hub directly, never through Redis.

Redis is never in the way: `publish` queues the batch for one sender task and
returns, whatever Redis does. While Redis is down or unreachable (at start or
later) `status` is `"down"`, nothing is sent, and the hub reads the stored stream
instead (`realtime.hub`: every 0.5 s while the bus is down). One warning is logged
when the bus is lost and one when it is back; the subscriber reconnects with a
backoff doubling from 0.1 s up to 5 s, then delivery is live again.

One message carries every batch queued since the last send, as text lines: the
sending instance's id; a JSON array with each event's `[cursor, type, ticket_id,
public, user_ids]`; then each event's frame as rendered for the consoles
(`Event.text()`, compact JSON without a newline), one a line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from connector.realtime.bus.memory import MemoryBus

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from connector.realtime.stream import Event

log = logging.getLogger("connector.realtime")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
#: Batches waiting for the sender beyond this are dropped (the database has them).
QUEUE_MAX = 10_000


class RedisBus(MemoryBus):
    """Redis pub/sub between instances, in-process fan-out within one."""

    status = "down"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.check_url(url)
        parts = urlsplit(url)
        self.url = url
        #: Where, for log lines (no password).
        self.where = f"{parts.hostname}:{parts.port or 6379}/{_db(parts.path)}"
        self.channel = f"connector:stream:{_db(parts.path)}"
        self._origin = secrets.token_hex(8)
        self._outgoing: collections.deque[list[Event]] = collections.deque()
        self._wake = asyncio.Event()
        self._lost = False
        self._tried = asyncio.Event()
        self._redis: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def check_url(cls, url: str) -> None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - parsing it raises for a bad port
        except ValueError as exc:
            raise ValueError(f"bad Redis URL: {exc}") from None
        if not parts.hostname:
            raise ValueError("a Redis URL needs a host: redis://[:password@]host:port/db")
        if parts.query or parts.fragment or not _db(parts.path).isdigit():
            raise ValueError("a Redis URL ends with the database number: "
                             "redis://[:password@]host:port/db")

    async def connect(self) -> None:
        """Start subscribing; wait for the first attempt only (Redis down is no error)."""
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=2,
                                     socket_keepalive=True, retry=None)
        self._tasks = [asyncio.create_task(self._subscribe(self._redis), name="bus-redis-in"),
                       asyncio.create_task(self._send(self._redis), name="bus-redis-out")]
        await self._tried.wait()

    async def disconnect(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
        await super().disconnect()

    async def publish(self, events: list[Event]) -> None:
        self.fan_out(events)
        if self.status == "ok" and len(self._outgoing) < QUEUE_MAX:
            self._outgoing.append(events)
            self._wake.set()

    async def _send(self, redis: Redis) -> None:
        """Send what `publish` queued, in order, as few messages as it takes."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            events = [e for batch in self._outgoing for e in batch]
            self._outgoing.clear()
            if not events or self.status != "ok":
                continue
            try:
                await redis.publish(self.channel, self._encode(events))
            except Exception as exc:
                # The subscriber notices the same outage and says so once.
                log.debug("event bus: publish to Redis failed: %r", exc)

    async def _subscribe(self, redis: Redis) -> None:
        delay = BACKOFF_FIRST
        while True:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._up()
                delay = BACKOFF_FIRST
                async for message in pubsub.listen():
                    batch = self._decode(message["data"])
                    if batch:
                        self.fan_out(batch)
                raise ConnectionError("subscription ended")
            except Exception as exc:
                self._down(exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _up(self) -> None:
        self.status = "ok"
        self._tried.set()
        if self._lost:
            self._lost = False
            log.warning("event bus: Redis at %s is back; live events between instances "
                        "are pushed again", self.where)

    def _down(self, exc: Exception) -> None:
        self.status = "down"
        self._outgoing.clear()
        self._tried.set()
        if not self._lost:
            self._lost = True
            log.warning("event bus: Redis at %s lost (%s); consoles read events from the "
                        "database meanwhile; reconnecting", self.where,
                        type(exc).__name__)

    def _encode(self, events: list[Event]) -> bytes:
        meta = orjson.dumps([[e.cursor, e.type, e.ticket_id, e.public, e.user_ids]
                             for e in events])
        return "\n".join((self._origin, meta.decode(), *(e.text() for e in events))).encode()

    def _decode(self, data: Any) -> list[Event]:
        """Another instance's events (none for this instance's own or a foreign message)."""
        # Imported here: settings import the bus registry, and the stream imports settings.
        from connector.realtime.stream import Event

        try:
            origin, meta, *texts = data.decode().split("\n")
            if origin == self._origin:
                return []
            return [Event.rendered(text, type, ticket_id, public, user_ids, cursor)
                    for (cursor, type, ticket_id, public, user_ids), text
                    in zip(orjson.loads(meta), texts, strict=True)]
        except (ValueError, TypeError, AttributeError):
            log.warning("event bus: ignored a malformed message on %s", self.channel)
            return []


def _db(path: str) -> str:
    return path.lstrip("/") or "0"
