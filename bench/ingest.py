"""Ingest benchmark: durable webhook ingest against the ceiling of a bare handler.

    python3 bench/ingest.py [--mixes few,escalating,handover] [--stored 0,100000,1000000]
                            [--duration 10] [--rounds 2] [--threads T --connections C]
    python3 bench/ingest.py --smoke            # a quick check that it runs
    python3 bench/ingest.py --profile /tmp/p   # plus two connector runs under py-spy
    python3 bench/ingest.py --database postgresql [--bus redis]   # one instance of a cluster

One run:

1. starts `bench/bare_app.py`, a bare Starlette app on the connector's server
   stack that only parses the same JSON and answers 202, and finds the wrk
   setting (threads, connections) that gives it its highest figure on this
   machine (`lib.ceiling`), unless --threads and --connections are given;
   every wrk run reports the load generator's CPU and warns when its threads
   were saturated;
2. for each number of events already stored (--stored): a fresh database
   (SQLite, or PostgreSQL with --database), the migrations, one integration,
   that many events written through the connector's own write path
   (bench/prefill.py), then one `connector serve`;
3. on the first database, with the first mix, finds the connector's own best
   wrk setting the same way (`lib.ceiling.CONNECTOR_GRID`; its group commit needs
   requests in flight), unless --same-setting (or --threads and --connections)
   gives it the bare app's;
4. for each mix (`lib.mixes`: few conversations in handover, most of them, or
   tickets opening under load), drives the bare app and the connector with wrk
   and bench/ingest.lua (every field of the documented `message_received`
   example, 1,000 end users), alternating bare, connector, bare, connector...;
5. prints events/s, the ratio of the connector to the highest bare figure of
   the run (and the connector at each calibrated setting), p50/p99 latency,
   the CPU of client and server, on SQLite what the database's disk wrote per
   event (/proc/diskstats: the WAL and the checkpoints), and checks in the database that every 2xx
   the connector gave is a stored inbound event (stored >= 2xx, the excess no
   larger than the requests still in flight when wrk stopped, which it does
   not wait for) with no non-2xx.

Exit status: 0 when every durability check passes, 1 otherwise (the targets
are reported, not enforced). Needs `wrk` on PATH (Debian: `apt-get install
wrk`) and, for --profile, `py-spy`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from lib import profiles
from lib.ceiling import CONNECTOR_GRID, calibrate, client_line, warn_saturated
from lib.cpu import CpuMeter
from lib.machine import describe, machine
from lib.mixes import Mix, mixes, preseed
from lib.options import add_run_options
from lib.procfs import block_device, disk_writes, process_tree
from lib.procs import Server, free_port, wait_ready
from lib.report import args_json, write_report
from lib.services import PgDatabase, postgres_database, scalar, start_redis
from lib.stack import Stack, stack
from lib.wrk import Run, wrk

HERE = Path(__file__).resolve().parent
BARE = HERE / "bare_app.py"
PREFILL = HERE / "prefill.py"


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--threads", type=int, help="wrk threads (default: calibrated)")
    p.add_argument("--connections", type=int, help="wrk connections (default: calibrated)")
    p.add_argument("--calibration", type=int, default=4, help="seconds per calibration run")
    p.add_argument("--same-setting", action="store_true",
                   help="drive the connector with the bare target's calibrated wrk setting "
                        "instead of calibrating the connector's own")
    p.add_argument("--rounds", type=int, default=2, help="bare+connector pairs per mix")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first")
    p.add_argument("--users", type=int, default=1000, help="distinct end users")
    p.add_argument("--mixes", default="few,escalating,handover",
                   help="workloads, in this order (bench/lib/mixes.py)")
    p.add_argument("--stored", default="0",
                   help="events already stored before the mixes run: one fresh database "
                        "per number, e.g. 0,100000,1000000")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                   help="postgresql: a fresh database on 127.0.0.1:5432 (trust auth)")
    p.add_argument("--bus", choices=("memory", "redis"), default="memory",
                   help="redis: a redis-server of the run's own as the event bus")
    p.add_argument("--smoke", action="store_true", help="a few seconds of each step")
    p.add_argument("--profile", metavar="PREFIX",
                   help="after the first database's rounds, two more connector runs of the "
                        "last mix under py-spy (not counted): PREFIX.txt (collapsed stacks, "
                        "see bench/stacks.py) and PREFIX.svg (flame graph)")
    add_run_options(p)
    args = p.parse_args(argv)
    if args.smoke:  # both calibrations included, one second per setting
        args.duration, args.calibration = 2, 1
        args.rounds, args.warmup, args.users, args.stored = 1, 0, 100, "300"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk not found (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if args.profile and shutil.which("py-spy") is None:
        print("error: py-spy not found (pip install py-spy)", file=sys.stderr)
        return 2
    chosen_mixes = [mixes(args.users)[name] for name in args.mixes.split(",")]
    levels = [int(n) for n in args.stored.split(",")]
    runs: list[Run] = []
    run_id = secrets.token_hex(3)
    ok = True
    with stack(source=args.source, keep=args.keep, prefix="bench-ingest-bare-") as outer:
        bare_port = free_port()
        bare = outer.spawn("bare", [sys.executable, str(BARE), "--port", str(bare_port)],
                           bare_port)
        wait_ready(bare)
        hook = "/hooks/smartly/bench?key=bench"
        print(f"machine: {machine()}")
        print(f"connector source: {describe(args.source)}")
        print(f"database: {args.database}, event bus: {args.bus}; {args.users} end users, "
              f"mixes {args.mixes}, events stored before: {args.stored}")

        def drive_bare(threads: int, connections: int, rnd: int, duration: float,
                       mix: Mix | None) -> Run:
            meter = CpuMeter({"bare": process_tree(bare.proc.pid)})
            meter.start()
            r = wrk(bare.url(hook), duration=duration, connections=connections,
                    threads=threads, salt=f"{run_id}b{rnd}", users=args.users,
                    help_percent=mix.help_percent if mix else 0.0, target="bare", rnd=rnd,
                    in_handover=mix.in_handover if mix else 0,
                    fresh_escalations=mix.fresh_escalations if mix else False,
                    mix=mix.name if mix else "calibration")
            meter.stop()
            r.server_cpu_s = meter.cpu_s["bare"]
            return r

        if args.threads and args.connections:
            setting = (args.threads, args.connections)
        else:
            setting, cal = calibrate(lambda t, c: drive_bare(t, c, -100, args.calibration, None))
            runs += cal
        threads, connections = setting
        print(f"workload: wrk -t{threads} -c{connections} -d{args.duration}s, "
              f"{args.rounds} round(s) per mix; bare pid {bare.proc.pid}")

        # The connector's own setting: found on the first database, kept for the others.
        own: list[tuple[int, int]] = ([setting] if args.same_setting
                                      or (args.threads and args.connections) else [])
        for level in levels:
            with connector_stack(args, level) as (st, conn, db, pg):
                ok = measure_level(args, st, conn, db, pg, level, chosen_mixes, run_id, runs,
                                   lambda rnd, duration, mix: drive_bare(
                                       threads, connections, rnd, duration, mix),
                                   own) and ok
    ok = summary(args, runs, setting, own[0], levels, chosen_mixes) and ok
    if args.json:
        write_report(args.json, {"machine": machine(), "args": args_json(args),
                                 "setting": {"threads": setting[0], "connections": setting[1]},
                                 "connector_setting": {"threads": own[0][0],
                                                       "connections": own[0][1]},
                                 "runs": [{**r.__dict__, "rate": r.rate,
                                           "client_busy": r.client_busy} for r in runs]})
    return 0 if ok else 1


@contextlib.contextmanager
def connector_stack(args: argparse.Namespace, level: int,
                    ) -> Iterator[tuple[Stack, Server, Path | str, PgDatabase | None]]:
    """A fresh database holding `level` events, and one connector serving it."""
    with contextlib.ExitStack() as setup:
        pg = (setup.enter_context(postgres_database(prefix="bench_ingest_"))
              if args.database == "postgresql" else None)
        st = setup.enter_context(stack(
            source=args.source, keep=args.keep, prefix="bench-ingest-",
            extra_env={"CONNECTOR_DATABASE_URL": pg.url} if pg else {}))
        if args.bus == "redis":
            start_redis(st)
        st.prepare()
        if level:
            out = subprocess.run([sys.executable, str(PREFILL), "--integration",
                                  st.integration["id"], "--events", str(level)],
                                 env=st.env, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"prefill failed:\n{out.stdout}\n{out.stderr[-3000:]}")
            print(f"\n{out.stdout.strip()} (through the connector's write path, no HTTP)")
        conn = st.start_connector()
        yield st, conn, (pg.url if pg else st.db), pg


def measure_level(args: argparse.Namespace, st: Stack, conn: Server, db: Path | str,
                  pg: PgDatabase | None, level: int, chosen: list[Mix], run_id: str,
                  runs: list[Run], drive_bare: Callable[[int, float, Mix], Run],
                  own: list[tuple[int, int]]) -> bool:
    """The mixes at one stored level. `own` holds the connector's wrk setting, or is
    empty: then it is calibrated here, with the first mix, and kept in `own`."""
    integration_id, hook_path = st.integration["id"], st.hook_path
    ok = True
    base = count_stored(db, integration_id)
    # SQLite: what the database's disk writes per event (WAL frames, then checkpoints).
    device = block_device(Path(db)) if pg is None else None
    print(f"\n== {base:,} events stored (--stored {level:,}); connector pid {conn.proc.pid}")

    def drive(rnd: int, duration: float, mix: Mix, setting: tuple[int, int] | None = None,
              ) -> Run:
        threads, connections = setting or own[0]
        salt = f"{run_id}c{level}{mix.name[0]}{rnd}{threads}x{connections}"
        before = count_stored(db, integration_id)
        pids = {"connector": process_tree(conn.proc.pid)}
        if pg is not None:
            pids["postgres"] = pg.backend_pids()
        meter = CpuMeter(pids)  # type: ignore[arg-type]
        meter.start()
        disk_before = disk_writes(device) if device else None
        r = wrk(conn.url(hook_path), duration=duration, connections=connections,
                threads=threads, salt=salt, users=args.users, help_percent=mix.help_percent,
                target="connector", rnd=rnd, in_handover=mix.in_handover,
                fresh_escalations=mix.fresh_escalations, mix=mix.name)
        meter.stop()
        disk_after = disk_writes(device) if device else None
        if disk_before and disk_after:
            r.disk_writes, r.disk_bytes = (b - a for a, b in zip(disk_before, disk_after,
                                                                 strict=True))
        r.server_cpu_s = sum(meter.cpu_s.values())
        st.check_alive()
        probe(conn.url(hook_path), salt)
        # The probe is one stored event of its own: not part of the run.
        r.stored = settled_count(db, integration_id) - before - 1
        r.open_tickets = open_tickets(db)
        r.stored_level = level
        return r

    seeded = 0
    for n, mix in enumerate(chosen):
        if mix.in_handover > seeded:
            seeded += preseed(conn.url(hook_path), seeded, mix.in_handover, f"{run_id}{level}")
        print(f"-- mix {mix.name}: {mix.describe(args.users)}; "
              f"{open_tickets(db)} open tickets before")
        if not own:
            best, cal = calibrate(lambda t, c, m=mix: drive(-200, args.calibration, m, (t, c)),
                                  CONNECTOR_GRID, target="connector")
            runs += cal
            own.append(best)
        if n == 0 and args.warmup:
            for target in ("bare", "connector"):
                w = (drive_bare(0, args.warmup, mix) if target == "bare"
                     else drive(0, args.warmup, mix))
                runs.append(w)
                print(f"  warm-up {target:9s} {w.rate:9.0f} req/s")
        for rnd in range(1, args.rounds + 1):
            for target in ("bare", "connector"):
                r = (drive_bare(rnd, args.duration, mix) if target == "bare"
                     else drive(rnd, args.duration, mix))
                runs.append(r)
                print(f"  round {rnd} {target:9s} {r.rate:9.0f} req/s   p50 {r.p50_ms:7.2f} ms"
                      f"   p99 {r.p99_ms:7.2f} ms   client {r.client_busy:4.0%}  server CPU "
                      f"{(r.server_cpu_s or 0) / r.duration_s:5.0%}"
                      + (f"   (2xx {r.ok_responses}, stored {r.stored}, open tickets "
                         f"{r.open_tickets})" if r.stored is not None else "")
                      + (f"   disk {r.disk_bytes / r.duration_s / 1e6:.0f} MB/s, "
                         f"{r.disk_bytes / max(1, r.ok_responses) / 1e3:.1f} kB/event"
                         if r.disk_bytes is not None else "")
                      + f"   load {r.load_before.split()[0]}" + warn_saturated(r))
                if r.target == "connector":
                    ok = check_run(r) and ok
        if args.profile and level == int(args.stored.split(",")[0]) and n == len(chosen) - 1:
            ok = profile(args, lambda rnd, d, m=mix: drive(rnd, d, m), conn, runs) and ok
    mine = [r for r in runs if r.target == "connector" and r.stored_level == level]
    return verify_totals(db, integration_id, mine, base, seeded) and ok


def summary(args: argparse.Namespace, runs: list[Run], setting: tuple[int, int],
            own: tuple[int, int], levels: list[int], chosen: list[Mix]) -> bool:
    """The ratios against the highest bare figure of the run, per mix and stored events."""
    bare = [r for r in runs if r.target == "bare"
            and (r.threads, r.connections) == setting and r.round != 0]
    ceiling = max(r.rate for r in bare)
    print(f"\nbare ceiling: {ceiling:.0f} events/s (highest bare figure of this run, wrk "
          f"-t{setting[0]} -c{setting[1]}; bare rounds {min(r.rate for r in bare):.0f}"
          f"-{ceiling:.0f})")
    print(f"connector driven with wrk -t{own[0]} -c{own[1]}"
          + (" (the bare target's setting)" if own == setting else
             " (its own calibrated setting)"))
    for r in runs:
        if r.target == "connector" and r.round == -200:
            print(f"  connector calibration, {r.mix}, wrk -t{r.threads} -c{r.connections}: "
                  f"{r.rate:.0f} events/s = {r.rate / ceiling:.1%} of the ceiling"
                  + ("  <- the bare target's setting" if (r.threads, r.connections) == setting
                     else ""))
    print(client_line([r for r in runs if r.round != 0]))
    non2xx = sum(r.errors["status"] for r in runs)
    sockets = {k: sum(r.errors[k] for r in runs) for k in ("connect", "read", "write", "timeout")}
    print(f"non-2xx responses: {non2xx} (all runs); socket errors: {sockets}")
    print(f"{'mix':11s} {'stored':>10s} {'events/s':>9s} {'ratio':>7s} {'target':>7s} "
          f"{'p50 ms':>7s} {'p99 ms':>7s} {'open tickets':>12s}")
    by: dict[tuple[str, int], float] = {}
    for mix in chosen:
        for level in levels:
            rs = [r for r in runs if r.target == "connector" and r.mix == mix.name
                  and r.round > 0 and r.stored_level == level]
            if not rs:
                continue
            rate = sum(r.ok_responses for r in rs) / sum(r.duration_s for r in rs)
            by[(mix.name, level)] = rate
            target = mix.target[args.database]
            print(f"{mix.name:11s} {level:10,d} {rate:9.0f} {rate / ceiling:7.1%} "
                  f"{target:7.0%} {max(r.p50_ms for r in rs):7.2f} "
                  f"{max(r.p99_ms for r in rs):7.2f} {rs[-1].open_tickets:12d}"
                  + ("" if rate / ceiling >= target else "   below target"))
    if len(levels) > 1:
        for mix in chosen:
            if (mix.name, levels[0]) in by:
                first = by[(mix.name, levels[0])]
                steps = ", ".join(f"{by[(mix.name, lv)] / first:.0%} at {lv:,}"
                                  for lv in levels[1:] if (mix.name, lv) in by)
                worst = min(by[(mix.name, lv)] / first for lv in levels if (mix.name, lv) in by)
                print(f"sustained ({mix.name}): {steps} of the figure at {levels[0]:,} stored -> "
                      + ("within 10%" if worst >= 0.9 else "NOT within 10%"))
    if non2xx:
        print("FAIL: non-2xx responses")
    ok = non2xx == 0
    print("durability check: " + ("ok" if ok and all(
        check_run(r, quiet=True) for r in runs if r.target == "connector") else "FAILED"))
    return ok


def check_run(r: Run, quiet: bool = False) -> bool:
    """Every 2xx is a stored event; extra stored events only from requests still in flight."""
    assert r.stored is not None
    extra = r.stored - r.ok_responses
    good = 0 <= extra <= r.in_flight and r.errors["status"] == 0
    if not good or not quiet:
        label = {0: "warm-up"}.get(r.round, f"round {r.round}" if r.round > 0 else "profiled")
        print(f"    {label} connector: 2xx {r.ok_responses}, stored {r.stored}, in flight at "
              f"stop {r.in_flight} -> stored - 2xx = {extra} " + ("ok" if good else "MISMATCH"))
    return good


def verify_totals(db: Path | str, integration_id: str, mine: list[Run], base: int,
                  seeded: int) -> bool:
    """This database's stored events = those before the runs + preseeded + runs + probes."""
    total = count_stored(db, integration_id)
    stored = sum(r.stored or 0 for r in mine)
    expected = base + seeded + stored + len(mine)
    print(f"  inbound events stored: {total:,} (before {base:,}, preseeded {seeded}, runs "
          f"{stored:,}, probes {len(mine)}: {expected:,})" + ("" if total == expected
                                                              else "   MISMATCH"))
    return total == expected


def profile(args: argparse.Namespace, drive: Callable[[int, float], Run], conn: Server,
            runs: list[Run]) -> bool:
    """Two more connector runs, each under one py-spy: collapsed stacks, then a flame graph."""
    ok = True
    for n, fmt, out in profiles.outputs(args.profile):
        with profiles.recording(conn.proc.pid, out, args.duration + 1, fmt, timeout=120):
            r = drive(100 + n, args.duration)
            r.round = -n
            runs.append(r)
        print(f"  profiled  connector {r.rate:9.0f} req/s under py-spy (not counted) -> {out}")
        ok = check_run(r) and ok
    return ok


if __name__ == "__main__":
    sys.exit(main())
