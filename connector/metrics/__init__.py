"""Prometheus metrics (docs/operations.md, "Metrics").

`definitions.Metrics`: every metric of one app on its own registry (several
apps may live in one process: tests, benchmarks), with the few calls the hot
paths make. `cluster`: the cluster-wide gauges, read from the database at
scrape time (a short cache), so that any instance answers the truth.
`exposition`: `/metrics` behind its bearer token, and the loopback listener of
`CONNECTOR_METRICS_PORT`.
"""

from connector.metrics.definitions import Metrics

__all__ = ["Metrics"]
