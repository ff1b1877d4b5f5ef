"""The gauges of the cluster and of this instance, made at scrape time.

What is true of the whole cluster (the queue, the longest wait, dead letters,
the waits of recent handovers) is read from the database, so that whichever
instance Prometheus scrapes answers the same; the read is cached for
`CACHE_SECONDS`, so that several scrapers (or a scrape per instance) cost one
read per period. What belongs to this instance (its live-stream connections,
its view of the bus, its database pool) is read from memory on each scrape.

`refresh()` (async, before the exposition) reads; `collect()` (prometheus_client's
Collector protocol, synchronous) only formats what was read.

Handover wait and first response are *gauge histograms* over the tickets
claimed (answered first) within the last `RECENT_SECONDS`, computed from their
timestamps: every instance reports the same cluster-wide distribution, whoever
claimed the ticket, and no event is lost to an instance that restarted.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.realtime import stream
from connector.storage import outage
from connector.storage.db import utcnow
from connector.storage.models import Delivery, Ticket
from connector.storage.webhook_models import WebhookDelivery

log = logging.getLogger("connector.metrics")

#: How long one read of the database serves scrapes.
CACHE_SECONDS = 5.0
#: The window of the handover wait and first response histograms.
RECENT_SECONDS = 3600.0
#: Waits: from seconds to hours.
WAIT_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)

_t = Ticket.__table__
_d = Delivery.__table__
_wd = WebhookDelivery.__table__


@dataclasses.dataclass
class Snapshot:
    """One read of the database."""

    #: (integration id, category or "", tickets queued, longest wait in seconds)
    queue: list[tuple[str, str, int, float]] = dataclasses.field(default_factory=list)
    #: Failed deliveries by kind (reply, event_webhook).
    dead_letters: dict[str, int] = dataclasses.field(default_factory=dict)
    handover_waits: list[float] = dataclasses.field(default_factory=list)
    first_responses: list[float] = dataclasses.field(default_factory=list)
    #: The stream's last cursor in the database, and this instance's hub's then.
    last_cursor: int = 0
    forwarded_cursor: int = 0


async def read(engine: AsyncEngine, now: dt.datetime) -> Snapshot:
    """The cluster-wide figures, in one connection."""
    since = now - dt.timedelta(seconds=RECENT_SECONDS)
    category = sa.func.coalesce(_t.c.category, "")
    async with engine.connect() as conn:
        queue = (await conn.execute(
            sa.select(_t.c.integration_id, category, sa.func.count(),
                      sa.func.min(_t.c.opened_at))
            .where(_t.c.state == "queued").group_by(_t.c.integration_id, category))).all()
        replies = (await conn.execute(
            sa.select(sa.func.count()).where(_d.c.state == "failed"))).scalar_one()
        hooks = (await conn.execute(
            sa.select(sa.func.count()).where(_wd.c.state == "failed"))).scalar_one()
        claimed = (await conn.execute(
            sa.select(_t.c.opened_at, _t.c.claimed_at).where(_t.c.claimed_at >= since))).all()
        answered = (await conn.execute(
            sa.select(_t.c.opened_at, _t.c.first_response_at)
            .where(_t.c.first_response_at >= since))).all()
        last = await stream.last_cursor(conn)
        await conn.rollback()
    return Snapshot(
        queue=[(i, c, n, max(0.0, (now - oldest).total_seconds())) for i, c, n, oldest in queue],
        dead_letters={"reply": replies, "event_webhook": hooks},
        handover_waits=[max(0.0, (b - a).total_seconds()) for a, b in claimed],
        first_responses=[max(0.0, (b - a).total_seconds()) for a, b in answered],
        last_cursor=last)


def buckets(values: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative bucket counts of `values` (Prometheus' `le`), `+Inf` last."""
    ordered = sorted(values)
    out = [(repr(float(b)), float(bisect.bisect_right(ordered, b))) for b in bounds]
    return [*out, ("+Inf", float(len(ordered)))]


def recent_waits(name: str, what: str, waits: Sequence[float]) -> GaugeHistogramMetricFamily:
    """A gauge histogram of the `waits` (seconds) of the last `RECENT_SECONDS`."""
    return GaugeHistogramMetricFamily(
        name, f"{what} in the last {RECENT_SECONDS:.0f} s (cluster-wide)",
        buckets=buckets(waits, WAIT_BUCKETS), gsum_value=sum(waits))


class Cluster(Collector):
    """The scrape-time gauges of one app: `refresh()` then the registry's `collect()`."""

    def __init__(self, engine: AsyncEngine, hub: Any, bus: Any, backend: str,
                 max_age: float = CACHE_SECONDS) -> None:
        self.engine = engine
        #: This instance's `realtime.hub.Hub` and `realtime.bus.EventBus`, and the bus's
        #: URL scheme.
        self.hub = hub
        self.bus = bus
        self.backend = backend
        self.max_age = max_age
        self.snapshot: Snapshot | None = None
        #: Whether the last read succeeded (the figures are then at most `max_age` old).
        self.database_up = False
        self._read_at = float("-inf")

    async def refresh(self) -> None:
        """Read the database unless the last read is younger than `max_age`; a failed
        read keeps the last figures (and `connector_metrics_database_up` says 0)."""
        if time.monotonic() - self._read_at < self.max_age:
            return
        forwarded = self.hub.delivered_upto
        try:
            snapshot = await read(self.engine, utcnow())
        except Exception as exc:
            outage.failed(log, "metrics: reading the database", exc)
            self.database_up = False
            return
        snapshot.forwarded_cursor = forwarded
        self.snapshot, self.database_up, self._read_at = snapshot, True, time.monotonic()

    def collect(self) -> Iterator[Any]:
        yield from self._instance()
        snap = self.snapshot
        up = GaugeMetricFamily("connector_metrics_database_up",
                               "1 when the last read of the cluster-wide figures succeeded")
        up.add_metric([], 1.0 if self.database_up else 0.0)
        yield up
        if snap is None:
            return
        queued = GaugeMetricFamily("connector_queue_tickets",
                                   "Tickets waiting in the queue (cluster-wide)",
                                   labels=["integration", "category"])
        longest = GaugeMetricFamily("connector_queue_longest_wait_seconds",
                                    "How long the oldest queued ticket has waited, since its "
                                    "handover (cluster-wide)", labels=["integration", "category"])
        for integration, category, count, wait in snap.queue:
            queued.add_metric([integration, category], float(count))
            longest.add_metric([integration, category], wait)
        yield queued
        yield longest
        dead = GaugeMetricFamily("connector_dead_letters",
                                 "Deliveries that failed for good and wait for a resend or "
                                 "nobody (cluster-wide), by kind", labels=["kind"])
        for kind, count in sorted(snap.dead_letters.items()):
            dead.add_metric([kind], float(count))
        yield dead
        yield recent_waits("connector_handover_wait_seconds",
                           "Handover to first assignment, of the tickets claimed",
                           snap.handover_waits)
        yield recent_waits("connector_first_response_seconds",
                           "Handover to the first agent reply, of the tickets first answered",
                           snap.first_responses)
        lag = GaugeMetricFamily("connector_stream_lag_events",
                                "Stored stream events this instance's hub had not forwarded "
                                "to its consoles when the database was read")
        lag.add_metric([], float(max(0, snap.last_cursor - snap.forwarded_cursor)))
        yield lag

    def _instance(self) -> Iterator[Any]:
        """This instance's own figures, read now."""
        connections = GaugeMetricFamily("connector_live_connections",
                                        "Console WebSockets open on this instance")
        connections.add_metric([], float(len(self.hub.clients)))
        yield connections
        bus = GaugeMetricFamily("connector_bus_up",
                                "1 while this instance's event bus works (0: down; the hub "
                                "then polls the database)", labels=["backend"])
        bus.add_metric([self.backend],
                       0.0 if self.bus.status == "down" else 1.0)
        yield bus
        pool = self.engine.pool
        if hasattr(pool, "checkedout") and hasattr(pool, "size"):
            used = GaugeMetricFamily("connector_db_pool_checked_out_connections",
                                     "Connections of this instance's pool in use")
            used.add_metric([], float(pool.checkedout()))
            yield used
            size = GaugeMetricFamily("connector_db_pool_size_connections",
                                     "Connections this instance's pool keeps (more may "
                                     "overflow)")
            size.add_metric([], float(pool.size()))
            yield size
