"""Ingest benchmark: durable webhook ingest against the ceiling of a bare handler.

    python3 bench/ingest.py [--duration 15] [--connections 64] [--threads 2] [--rounds 2]
    python3 bench/ingest.py --smoke            # 2 s, 4 connections: a quick check
    python3 bench/ingest.py --profile /tmp/p   # plus two connector runs under py-spy
    python3 bench/ingest.py --database postgresql [--bus redis]   # one instance of a cluster

One run:

1. makes a temporary directory with a fresh SQLite database, applies the
   migrations (`connector migrate`) and registers one integration
   (`connector integration add --json`);
2. starts one `connector serve` (one worker, default SQLite, log level
   warning) and, next to it, `bench/bare_app.py`: a bare Starlette app on the
   same server stack that only parses the same JSON and answers 202;
3. drives both with wrk and `bench/ingest.lua` (unique `message_received`
   turns from 1,000 end users, 5% with need_help), alternating
   bare, connector, bare, connector... so machine noise hits both;
4. prints events/s for each, the ratio connector/bare, and p50/p99 latency;
5. checks in the database that every 2xx the connector gave is a stored
   inbound event: stored >= 2xx, the excess no larger than the requests still
   in flight when wrk stopped (wrk does not wait for them), and no non-2xx.

`--database postgresql` runs the connector on a fresh PostgreSQL database
(unique name, dropped at the end) instead of SQLite, and `--bus redis` gives it
a redis-server of the run's own as its event bus (`lib.services`): one
instance as a cluster runs it.

Exit status: 0 when all checks pass, 1 otherwise. Needs `wrk` on PATH
(Debian: `apt-get install wrk`) and, for --profile, `py-spy`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from lib import profiles
from lib.machine import describe, machine
from lib.options import add_run_options
from lib.procs import Server, free_port, wait_ready
from lib.report import args_json, write_report
from lib.services import postgres_database, scalar, start_redis
from lib.stack import stack
from lib.wrk import Run, wrk

HERE = Path(__file__).resolve().parent
BARE = HERE / "bare_app.py"


def open_tickets(db: Path | str) -> int:
    """Open tickets in `db` (a SQLite file or a PostgreSQL URL)."""
    return int(scalar(db, "SELECT COUNT(*) FROM conversation WHERE open_ticket_id IS NOT NULL"))


def count_stored(db: Path | str, integration_id: str) -> int:
    return int(scalar(db, "SELECT COUNT(*) FROM inbound_event WHERE integration_id = $1",
                      integration_id))


def probe(url: str, salt: str, timeout: float = 120.0) -> None:
    """POST one more event and wait for its answer.

    The connector's writer commits in arrival order, so once the probe is
    answered every request that reached it before is committed too.
    """
    body = json.dumps({"event": "message_received", "payload": {
        "user_id": "bench-probe", "input": f"probe {salt} {time.time_ns()}"}}).encode()
    req = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (loopback)
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        if resp.status >= 300:
            raise SystemExit(f"probe answered {resp.status}")


def settled_count(db: Path | str, integration_id: str, quiet: float = 0.5,
                  timeout: float = 15.0) -> int:
    """The stored count once it has stopped moving (in-flight requests finished)."""
    deadline = time.monotonic() + timeout
    last = count_stored(db, integration_id)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = count_stored(db, integration_id)
        if now == last:
            return now
        last = now
    return last


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--rounds", type=int, default=2, help="bare+connector pairs")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first")
    p.add_argument("--users", type=int, default=1000, help="distinct end users")
    p.add_argument("--help-percent", type=float, default=5.0, help="%% of turns need_help")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                   help="postgresql: a fresh database on 127.0.0.1:5432 (trust auth)")
    p.add_argument("--bus", choices=("memory", "redis"), default="memory",
                   help="redis: a redis-server of the run's own as the event bus")
    p.add_argument("--smoke", action="store_true", help="2 s, 4 connections, 1 round")
    p.add_argument("--profile", metavar="PREFIX",
                   help="after the rounds, two more connector runs under py-spy "
                        "(not counted): PREFIX.txt (collapsed stacks, see bench/stacks.py) "
                        "and PREFIX.svg (flame graph)")
    add_run_options(p)
    args = p.parse_args(argv)
    if args.smoke:
        args.duration, args.connections, args.threads = 2, 4, 1
        args.rounds, args.warmup = 1, 0
    if shutil.which("wrk") is None:
        print("error: wrk not found (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if args.profile and shutil.which("py-spy") is None:
        print("error: py-spy not found (pip install py-spy)", file=sys.stderr)
        return 2

    runs: list[Run] = []
    with contextlib.ExitStack() as setup:
        pg = (setup.enter_context(postgres_database(prefix="bench_ingest_"))
              if args.database == "postgresql" else None)
        st = setup.enter_context(stack(
            source=args.source, keep=args.keep, prefix="bench-ingest-",
            extra_env={"CONNECTOR_DATABASE_URL": pg.url} if pg else {}))
        if args.bus == "redis":
            start_redis(st)
        conn = st.start_connector()
        bare_port = free_port()
        bare = st.spawn("bare", [sys.executable, str(BARE), "--port", str(bare_port)],
                        bare_port)
        wait_ready(bare)
        db = pg.url if pg else st.db
        integration_id, hook_path = st.integration["id"], st.hook_path
        print(f"machine: {machine()}")
        print(f"connector source: {describe(st.source)}")
        print(f"database: {args.database}, event bus: {args.bus}")
        print(f"workload: wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
              f"{args.users} end users, {args.help_percent:g}% need_help, "
              f"{args.rounds} round(s); connector pid {conn.proc.pid}, bare pid {bare.proc.pid}")

        run_id = secrets.token_hex(3)
        stored_before = 0

        def drive(server: Server, target: str, rnd: int, duration: int) -> Run:
            nonlocal stored_before
            salt = f"{run_id}{target[0]}{rnd}"
            r = wrk(server.url(hook_path), duration=duration, connections=args.connections,
                    threads=args.threads, salt=salt, users=args.users,
                    help_percent=args.help_percent, target=target, rnd=rnd)
            if server.proc.poll() is not None:
                raise SystemExit(f"{target} died:\n{server.log.read_text()[-3000:]}")
            if target == "connector":
                probe(server.url(hook_path), salt)
                total = settled_count(db, integration_id)
                # The probe is one stored event of its own: not part of the run.
                r.stored, stored_before = total - stored_before - 1, total
                r.open_tickets = open_tickets(db)
            return r

        if args.warmup:
            for server, target in ((bare, "bare"), (conn, "connector")):
                w = drive(server, target, 0, args.warmup)
                runs.append(w)
                print(f"  warm-up {target:9s} {w.rate:9.0f} req/s")
        for rnd in range(1, args.rounds + 1):
            for server, target in ((bare, "bare"), (conn, "connector")):
                r = drive(server, target, rnd, args.duration)
                runs.append(r)
                print(f"  round {rnd} {target:9s} {r.rate:9.0f} req/s   p50 {r.p50_ms:7.2f} ms"
                      f"   p99 {r.p99_ms:7.2f} ms   max {r.max_ms:7.1f} ms"
                      f"   (2xx {r.ok_responses}, non-2xx {r.errors['status']}"
                      + (f", stored {r.stored}, open tickets {r.open_tickets}"
                         if r.stored is not None else "")
                      + f"; load {r.load_before})")

        measured = [r for r in runs if r.round > 0]
        ok = report(measured, runs)

        if args.profile:
            ok = profile(conn, args, drive, runs) and ok
        ok = verify_totals(db, integration_id, runs) and ok
        if args.json:
            write_report(args.json, {"machine": machine(), "args": args_json(args),
                                     "runs": [{**r.__dict__, "rate": r.rate} for r in runs]})
        return 0 if ok else 1


def report(measured: list[Run], every: list[Run]) -> bool:
    bare = [r for r in measured if r.target == "bare"]
    conn = [r for r in measured if r.target == "connector"]

    def rate(rs: list[Run]) -> float:
        return sum(r.ok_responses for r in rs) / sum(r.duration_s for r in rs)

    def med(rs: list[Run], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in rs)

    b, c = rate(bare), rate(conn)
    print()
    print(f"ratio connector/bare: {c / b:.1%}   (target >= 35%)")
    print(f"bare      {b:9.0f} events/s   p50 {med(bare, 'p50_ms'):7.2f} ms"
          f"   p99 {med(bare, 'p99_ms'):7.2f} ms")
    print(f"connector {c:9.0f} events/s   p50 {med(conn, 'p50_ms'):7.2f} ms"
          f"   p99 {med(conn, 'p99_ms'):7.2f} ms")
    ok = True
    socket_errors = {k: sum(r.errors[k] for r in measured)
                     for k in ("connect", "read", "write", "timeout")}
    non2xx = sum(r.errors["status"] for r in every)
    print(f"non-2xx responses: {non2xx} (bare and connector, all runs); "
          f"socket errors: {socket_errors}")
    if non2xx:
        ok = False
        print("FAIL: non-2xx responses")
    for r in [r for r in every if r.target == "connector"]:
        ok = check_run(r) and ok
    print("durability check: " + ("ok" if ok else "FAILED"))
    return ok


def check_run(r: Run) -> bool:
    """Every 2xx is a stored event; extra stored events only from requests still in flight."""
    assert r.stored is not None
    extra = r.stored - r.ok_responses
    good = 0 <= extra <= r.in_flight
    label = {0: "warm-up"}.get(r.round, f"round {r.round}" if r.round > 0 else "profiled")
    print(f"  {label:9s} connector: 2xx {r.ok_responses}, stored {r.stored}, "
          f"in flight at stop {r.in_flight} -> stored - 2xx = {extra} "
          + ("ok" if good else "MISMATCH"))
    return good


def verify_totals(db: Path | str, integration_id: str, runs: list[Run]) -> bool:
    total = count_stored(db, integration_id)
    conn_runs = [r for r in runs if r.target == "connector"]
    # Each connector run is followed by one probe event (see `probe`).
    expected = sum(r.stored or 0 for r in conn_runs) + len(conn_runs)
    print(f"total inbound events stored: {total} (runs + probes: {expected})")
    return total == expected


def profile(conn: Server, args: argparse.Namespace, drive: Callable[[Server, str, int, int], Run],
            runs: list[Run]) -> bool:
    """Two more connector runs, each under one py-spy: collapsed stacks, then a flame graph."""
    ok = True
    for n, fmt, out in profiles.outputs(args.profile):
        with profiles.recording(conn.proc.pid, out, args.duration + 1, fmt, timeout=120):
            r = drive(conn, "connector", 100 + n, args.duration)
            r.round = -n
            runs.append(r)
        print(f"  profiled  connector {r.rate:9.0f} req/s under py-spy (not counted) -> {out}")
        ok = check_run(r) and ok
    return ok


if __name__ == "__main__":
    sys.exit(main())
