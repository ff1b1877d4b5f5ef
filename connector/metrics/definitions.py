"""The metrics of one app, on a registry of its own.

Counters and histograms here are this process's: each instance exports its
own and Prometheus sums them. The SQLite writer child process is never
instrumented: the server counts each batch from the answer it gets
(`ingest.batcher`). Cluster-wide facts (queues, dead letters, recent waits)
are not here but in `connector.metrics.cluster`, read from the database.

Names follow Prometheus' conventions: `connector_` first, the unit last
(`_seconds`, `_bytes`, `_total` for counters).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

#: Batch sizes: 1 to the largest `CONNECTOR_INGEST_BATCH_MAX` people set.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: A commit, a channel's answer: from a millisecond to the delivery timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)

#: The outcome of a delivery attempt (`Delivery.state` after it) that settles it.
SETTLED = ("delivered", "failed")


class Metrics:
    """Every per-process metric of one app, registered on `registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._webhook_children: dict[tuple[str, str], Counter] = {}
        self.webhook_events = Counter(
            "connector_webhook_events_total",
            "Webhook requests by source and outcome: the stored event's status (processed, "
            "duplicate, ignored) or the error answered (unauthorized, invalid, unstorable, "
            "too_large, unavailable, ...)", ["source", "outcome"], registry=r)
        self.ingest_batch_size = Histogram(
            "connector_ingest_batch_size_events", "Webhook events written per transaction",
            buckets=BATCH_BUCKETS, registry=r)
        self.ingest_commit = Histogram(
            "connector_ingest_commit_seconds",
            "Time to write and commit one ingest batch (on SQLite: in the writer process, "
            "measured by the server from its answer)", buckets=LATENCY_BUCKETS, registry=r)
        self.deliveries = Counter(
            "connector_deliveries_total",
            "Deliveries settled by an attempt, by kind (reply) and outcome (delivered, "
            "failed: a dead letter)", ["kind", "outcome"], registry=r)
        self.delivery_retries = Counter(
            "connector_delivery_retries_total",
            "Delivery attempts that failed and will be retried, by kind", ["kind"], registry=r)
        self.delivery_attempt = Histogram(
            "connector_delivery_attempt_seconds",
            "Time of one delivery attempt (the channel's answer or its failure), by kind",
            ["kind"], buckets=LATENCY_BUCKETS, registry=r)
        self.live_messages = Counter(
            "connector_live_messages_total", "WebSocket messages sent to consoles",
            registry=r)
        self.live_bytes = Counter(
            "connector_live_sent_bytes_total",
            "Bytes of WebSocket messages sent to consoles (UTF-8 text, before compression)",
            registry=r)

    def webhook_event(self, source: str, outcome: str) -> None:
        """A webhook request answered: `outcome` its stored status or its error code.

        Every webhook request counts here, so each (source, outcome) child is looked up
        by `labels` once and kept (both come from fixed sets: sources and codes)."""
        child = self._webhook_children.get((source, outcome))
        if child is None:
            child = self._webhook_children[source, outcome] = self.webhook_events.labels(
                source, outcome)
        child.inc()

    def ingest_batch(self, size: int, seconds: float) -> None:
        """One batch of `size` events written and committed in `seconds`."""
        self.ingest_batch_size.observe(size)
        self.ingest_commit.observe(seconds)

    def delivery(self, kind: str, state: str, seconds: float) -> None:
        """One attempt recorded: `state` is the delivery's state after it (delivered,
        retrying, failed)."""
        self.delivery_attempt.labels(kind).observe(seconds)
        if state in SETTLED:
            self.deliveries.labels(kind, state).inc()
        else:
            self.delivery_retries.labels(kind).inc()

    def live_sent(self, text: str) -> None:
        """One message sent on a console's socket."""
        self.live_messages.inc()
        self.live_bytes.inc(len(text) if text.isascii() else len(text.encode()))
