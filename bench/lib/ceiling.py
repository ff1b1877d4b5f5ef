"""The bare ceiling of a load-generator run, found rather than assumed.

On 2 cores the load generator shares the machine with the server it measures:
too few wrk connections leave the server idle between requests, too many
threads take CPU the server needs. `calibrate` runs wrk against the bare
target with each setting of `GRID` and keeps the one that gives it its highest
figure (and the connector with each of `CONNECTOR_GRID`: its group commit needs
requests in flight, so its best setting is found the same way, and both settings
are reported); every run also reports wrk's own CPU, and `warn_saturated` flags a run
whose client threads were busy nearly all the time (then the client, not the
server, may have set the pace).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .wrk import SATURATED, Run

#: (wrk threads, connections) tried against the bare target.
GRID: tuple[tuple[int, int], ...] = ((1, 8), (1, 16), (1, 32), (1, 64), (2, 32), (2, 64))
#: Tried against the connector: one wrk thread is far from busy there (group commit needs
#: requests in flight, not client CPU), so only the connections vary.
CONNECTOR_GRID: tuple[tuple[int, int], ...] = ((1, 8), (1, 16), (1, 32), (1, 64))


def calibrate(drive: Callable[[int, int], Run], grid: Iterable[tuple[int, int]] = GRID,
              target: str = "bare") -> tuple[tuple[int, int], list[Run]]:
    """`drive(threads, connections)` for each setting; the setting with the highest rate."""
    runs = []
    print(f"calibration of the load generator against the {target} target:")
    for threads, connections in grid:
        r = drive(threads, connections)
        runs.append(r)
        print(f"  wrk -t{threads} -c{connections:<3d} {r.rate:9.0f} req/s   "
              f"client CPU {r.client_cpu_s / r.duration_s:5.0%} of a core "
              f"({r.client_busy:4.0%} of its {threads} thread(s))   server CPU "
              + (f"{r.server_cpu_s / r.duration_s:5.0%}" if r.server_cpu_s is not None else "-")
              + f"   p99 {r.p99_ms:6.2f} ms" + warn_saturated(r))
    best = max(runs, key=lambda r: r.rate)
    print(f"  chosen: wrk -t{best.threads} -c{best.connections} (the {target} target's "
          f"highest figure, {best.rate:.0f} req/s)")
    return (best.threads, best.connections), runs


def warn_saturated(r: Run) -> str:
    """A warning to print after a run's figures when its client was saturated, else ''."""
    if not r.client_saturated:
        return ""
    return (f"   WARNING: client saturated (wrk threads {r.client_busy:.0%} busy >= "
            f"{SATURATED:.0%}): this figure may be the load generator's")


def client_line(runs: list[Run]) -> str:
    """wrk's CPU over `runs`: the proof (or not) that the client was not the bottleneck."""
    if not runs:
        return "no runs"
    worst = max(r.client_busy for r in runs)
    per_req = sum(r.client_cpu_s for r in runs) / max(1, sum(r.requests for r in runs))
    verdict = ("client saturated in some runs: see the warnings" if worst >= SATURATED
               else "the client was not the bottleneck")
    return (f"load generator: {per_req * 1e6:.1f} us CPU per request, threads at most "
            f"{worst:.0%} busy ({verdict})")
