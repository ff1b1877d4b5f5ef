"""The Grafana dashboard and the Prometheus alerting rules in deploy/ name only metrics
the app exports: every `connector_*` name in their queries is in a scrape of the real
app (a metric whose labels were never used still has its `# TYPE` line)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from connector.settings import Settings
from tests.conftest import make_settings
from tests.helpers import running

pytestmark = pytest.mark.anyio

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
ALERTS = DEPLOY / "prometheus-alerts.yml"
TOKEN = "deploy-test-token-0123456789"
_NAME = re.compile(r"\bconnector_[a-z0-9_]+\b")
#: The sample names of a family of each type, by suffix.
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
             "gauge": ("",), "gaugehistogram": ("_bucket", "_gcount", "_gsum")}


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


async def exported(settings: Settings) -> set[str]:
    async with running(settings) as (_, client):
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    return {family.name + suffix for family in text_string_to_metric_families(r.text)
            for suffix in _SUFFIXES[family.type]}


@pytest.fixture
def token_settings(settings: Settings, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, metrics_token=TOKEN)


def test_the_files_have_what_they_should() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15 and all(q.strip() for q in queries)
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {"ConnectorQueueGrowing", "ConnectorLongestWaitHigh",
                                           "ConnectorDeliveriesFailing", "ConnectorDeadLetter",
                                           "ConnectorBusDown"}
    for rule in rules:
        assert rule["expr"].strip() and rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in {"warning", "critical"}


async def test_every_metric_named_in_deploy_is_exported(token_settings: Settings) -> None:
    names = await exported(token_settings)
    used = {name for q in dashboard_queries() for name in _NAME.findall(q)}
    used |= {name for rule in alert_rules() for name in _NAME.findall(rule["expr"])}
    assert used, "no metric named"
    assert used - names == set()
    # And the other way round: each exported metric is on the dashboard.
    shown = {name for q in dashboard_queries() for name in _NAME.findall(q)}
    families = {n.removesuffix(s) for n in names for s in ("_bucket", "_count", "_sum",
                                                          "_gcount", "_gsum") if n.endswith(s)}
    missing = {n for n in names - shown if not any(n.startswith(f) for f in families)
               and not n.endswith("_created")}
    assert missing == set()


def test_queries_read_cluster_wide_gauges_with_max() -> None:
    """Every instance reports the same cluster-wide figures: summing them would count
    each as many times as there are instances."""
    for query in dashboard_queries() + [r["expr"] for r in alert_rules()]:
        for name in ("connector_queue_tickets", "connector_queue_longest_wait_seconds",
                     "connector_dead_letters", "connector_handover_wait_seconds",
                     "connector_first_response_seconds"):
            if name in query:
                assert not re.search(rf"\bsum\b[^()]*\(\s*{name}", query), query


