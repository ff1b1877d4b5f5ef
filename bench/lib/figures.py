"""Latency figures: nearest-rank percentiles, and how a summary prints."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def summary(values: list[float]) -> dict[str, float]:
    """n, p50, p90, p99 and max of `values` (NaN when there are none)."""
    v = sorted(values)
    return {"n": len(v), "p50": percentile(v, 50), "p90": percentile(v, 90),
            "p99": percentile(v, 99), "max": v[-1] if v else float("nan")}


def fmt_ms(s: dict[str, float]) -> str:
    return (f"p50 {s['p50']:7.2f} ms   p99 {s['p99']:7.2f} ms   max {s['max']:8.2f} ms"
            f"   (n={s['n']:.0f})")
