"""Connector trees side by side under the same ingest load, in alternated rounds.

    python3 bench/ab.py BEFORE AFTER [--rounds 6] [--duration 5] [--connections 64]
    python3 bench/ab.py /tmp/before . /tmp/before,CONNECTOR_INGEST_BATCH_MAX=16
    python3 bench/ab.py /tmp/before . --database postgresql

On a noisy machine, figures of separate runs differ by more than most changes
(on the 2 vCPU machines of issue 17, one tree read 1,655-3,562 events/s within
one run): a before/after taken minutes apart says little. Here every TARGET
runs at once as a connector of its own, each on a fresh database (SQLite, or
PostgreSQL with --database), idle while another is driven, and the rounds
alternate (A B, then B A, ...), so that each pair of figures is taken seconds
apart.

A TARGET is a checkout (`git worktree add DIR REV`, or `git archive REV | tar -x
-C DIR`) with, after commas, settings for that connector alone. Each round is
wrk with bench/ingest.lua's turns (1,000 end users, `--help-percent` of them
asking for an agent), one wrk thread with `--connections` connections for
`--duration` seconds; the first
round is a warm-up and is not counted. Printed: each round's events/s, then per
target the median and range over the rounds and, against the first target, the
median of the ratios of the rounds (each a pair taken together), with wrk's own
CPU (the proof that the client did not set the pace).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lib.ceiling import warn_saturated
from lib.machine import describe, machine
from lib.procs import Server
from lib.services import postgres_database
from lib.stack import Stack, stack
from lib.wrk import Run, wrk


@dataclass
class Target:
    """One connector tree and its settings, with its rounds."""

    spec: str
    source: Path
    #: A, B, C, ... in the order given.
    label: str
    env: dict[str, str] = field(default_factory=dict)
    st: Stack | None = None
    conn: Server | None = None
    runs: list[Run] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str, label: str) -> Target:
        path, *settings = spec.split(",")
        env = {}
        for item in settings:
            name, sep, value = item.partition("=")
            if not sep or not name.startswith("CONNECTOR_"):
                raise SystemExit(f"error: {item!r} in {spec!r}: settings are CONNECTOR_NAME=VALUE")
            env[name] = value
        source = Path(path).resolve()
        if not (source / "connector").is_dir():
            raise SystemExit(f"error: {path!r} is not a checkout of the connector")
        return cls(spec, source, label, env)

    @property
    def rates(self) -> list[float]:
        return [r.rate for r in self.runs]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="a checkout, optionally followed by ,CONNECTOR_NAME=VALUE settings")
    p.add_argument("--rounds", type=int, default=6, help="counted rounds per target")
    p.add_argument("--duration", type=int, default=5, help="whole seconds per round (wrk)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--help-percent", type=float, default=0.0,
                   help="percent of turns asking for an agent (tickets open)")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--smoke", action="store_true", help="2 short rounds, to check it runs")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1 (the warm-up is not counted)")
    if args.smoke:
        args.rounds, args.duration, args.connections = 2, 1, 8
    return args


def drive(target: Target, args: argparse.Namespace, rnd: int) -> Run:
    assert target.st is not None and target.conn is not None
    return wrk(target.conn.url(target.st.hook_path), duration=args.duration,
               connections=args.connections, threads=1, salt=f"ab-{rnd}-{time.time_ns()}",
               users=1000, help_percent=args.help_percent, target=target.spec, rnd=rnd,
               mix="ab")


def report(targets: list[Target]) -> None:
    base = targets[0]
    print(f"\n{'target':<6} {'median':>8} {'range':>15} {'vs A':>7}   (events/s)")
    for t in targets:
        ratio = (statistics.median(r / b for r, b in zip(t.rates, base.rates, strict=True))
                 if t is not base else 1.0)
        print(f"{t.label:<6} {statistics.median(t.rates):8.0f} "
              f"{min(t.rates):7.0f}-{max(t.rates):<7.0f} {ratio:7.3f}")
    runs = runs_of(targets)
    worst = max(r.client_busy for r in runs)
    print(f"load generator: wrk thread at most {worst:.0%} busy"
          + (": WARNING, the client may have set the pace" if any(r.client_saturated
                                                                 for r in runs)
             else " (the client was not the bottleneck)"))
    failed = {k: sum(r.errors.get(k, 0) for r in runs) for k in runs[0].errors}
    print(f"errors (non-2xx as 'status'; not counted in events/s): {failed}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets = [Target.parse(spec, chr(ord("A") + n)) for n, spec in enumerate(args.targets)]
    print(f"machine: {machine()}")
    with contextlib.ExitStack() as setup:
        for t in targets:
            env = dict(t.env)
            if args.database == "postgresql":
                env["CONNECTOR_DATABASE_URL"] = setup.enter_context(
                    postgres_database(prefix="bench_ab_")).url
            t.st = setup.enter_context(stack(source=t.source, extra_env=env, prefix="bench-ab-"))
            t.conn = t.st.start_connector()
            print(f"target {t.label}: {t.spec}: {describe(t.source)}")
        print(f"workload: wrk -t1 -c{args.connections} -d{args.duration}s, "
              f"{args.help_percent}% of turns asking for an agent, database {args.database}")
        for rnd in range(args.rounds + 1):
            order = targets if rnd % 2 else targets[::-1]
            figures = []
            for t in order:
                r = drive(t, args, rnd)
                if rnd:
                    t.runs.append(r)
                figures.append(f"{t.label} {r.rate:6.0f}{warn_saturated(r)}")
            print(f"{'warm-up' if rnd == 0 else f'round {rnd}':>8}: " + "   ".join(figures))
    report(targets)
    return 0 if all(not any(r.errors.values()) for r in runs_of(targets)) else 1


def runs_of(targets: list[Target]) -> list[Run]:
    return [r for t in targets for r in t.runs]


if __name__ == "__main__":
    sys.exit(main())
