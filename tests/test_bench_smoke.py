"""Smoke runs of the benchmarks, so they keep working. No figure is asserted here:
speed is measured by hand (docs/benchmarks.md), never in the test suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run(script: str, *args: str, timeout: float = 180) -> str:
    out = subprocess.run([sys.executable, str(BENCH / script), "--smoke", *args],
                         capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"{script} --smoke failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.slow
def test_ingest_benchmark_runs_and_checks_durability():
    out = run("ingest.py")
    assert "bare ceiling:" in out
    assert "calibration of the load generator against the connector target:" in out
    assert "connector calibration, few, wrk -t1 -c8:" in out
    assert "load generator:" in out
    for mix in ("few", "escalating", "handover"):
        assert f"-- mix {mix}:" in out
    assert "durability check: ok" in out


@pytest.mark.slow
def test_latency_benchmark_runs():
    assert "ratio connector/bare" in run("latency.py")


@pytest.mark.slow
def test_delivery_benchmark_runs():
    assert "reply  -> channel" in run("delivery.py")


@pytest.mark.slow
def test_connections_benchmark_runs():
    assert "checks ok" in run("connections.py")


@pytest.mark.slow
def test_ingest_profile_runs_and_stores_every_event():
    assert "writer: ingest.apply.write + commit" in run("ingest_profile.py")


@pytest.mark.slow
def test_cluster_benchmark_runs_on_two_instances():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is missing: run scripts/install-test-deps.sh")
    out = run("cluster.py")
    assert "  same instance  p50" in out
    assert "  other instance p50" in out
    assert "frames lost 0 " in out


@pytest.mark.slow
def test_routing_benchmark_assigns_every_handover_once():
    out = run("routing.py")
    assert "ratio assigned/created" in out
    assert "not assigned 0 " in out
    assert "double assignments 0 " in out
    assert "frames lost 0 " in out


@pytest.mark.slow
def test_ab_benchmark_alternates_two_targets():
    bench = str(BENCH.parent)
    out = run("ab.py", bench, f"{bench},CONNECTOR_INGEST_BATCH_MAX=16")
    assert " round 1: A " in out and " round 2: B " in out  # the order alternates
    assert "vs A" in out and "'status': 0" in out
