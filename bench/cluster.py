"""Cluster event-to-console latency: two instances on PostgreSQL + Redis, consoles on both.

    python3 bench/cluster.py [--consoles 100] [--rate 200] [--duration 10] [--warmup 2]
    python3 bench/cluster.py --smoke             # a few seconds, small numbers
    python3 bench/cluster.py --bare              # plus a bare broadcast round (bare_ws.py)

One run:

1. a fresh PostgreSQL database with a unique name (dropped at the end) and a
   `redis-server` of the run's own on a free loopback port (`lib.services`);
2. `connector migrate`, one integration, then `--instances` (2) `connector
   serve` processes on ports of their own, all with the same
   CONNECTOR_DATABASE_URL and CONNECTOR_BUS_URL=redis://127.0.0.1:<port>/0;
   each must report its bus `ok` (`/readyz`) before the round;
3. `--logins` supervisor accounts, each signed in once on the first instance:
   sessions live in the database, so the same cookie opens a console on any
   instance (a supervisor sees every event);
4. `--users` end users each send one `need_help` turn, so each further turn
   of theirs is one `message.created` frame for every console (as in
   bench/latency.py);
5. one round: the consoles are spread evenly over the instances (one
   `lib.consoles` child process per instance) and record the CLOCK_MONOTONIC
   arrival of each frame carrying the run's token; this process sends the
   turns at `--rate` in total, turn `s` to instance `s % instances`: one
   open-loop paced load per instance (`lib.load.paced_load`) at
   rate/instances, started offset by 1/rate from each other, so together they
   are one even stream; `--warmup` seconds of turns first, not counted in the
   latencies;
6. latency of each (event, console) pair = arrival - send, in two groups:
   `same instance` (the console is on the instance the turn was posted to:
   the local fan-out) and `other instance` (the event reached the console's
   instance through Redis). Prints p50/p99/max per group and the ratio
   other/same, frames lost (over every turn, warm-up included), duplicates
   (a (turn, console) pair received more than once), closed consoles, the
   achieved send rate against the target (a warning when it fell short), and
   the CPU use of each server, the consoles processes, the load generator,
   redis-server and the PostgreSQL backends serving the database.

The baseline is the `same instance` group: measured in the same round, under
the same load, at the same moments as the `other instance` group, so the ratio
other/same is the cost of crossing instances over the local path, with the
machine's noise hitting both alike. `--bare` adds one round of the bare
broadcast ceiling (bench/bare_ws.py, run exactly as bench/latency.py runs it,
all consoles on it) before the cluster round: a second reference, off by
default because it is a separate round (other moments, other noise) of one
process, which says nothing about crossing instances, and it doubles the run.

The consoles and the load generator are separate processes; with 2 vCPUs
every server, redis-server and PostgreSQL share the machine with them (and
with whatever else runs): the CPU line shows who was busy.

Exit status: 0 when every console stayed connected and got every turn's frame
(duplicates are reported, not failed); 1 otherwise.
The latency target and the achieved send rate are reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from array import array
from dataclasses import dataclass
from typing import Any

from lib.consoles import ConsoleGroup, ConsoleSpec
from lib.cpu import CpuMeter
from lib.figures import fmt_ms, summary
from lib.load import LoadResult, paced_load
from lib.machine import describe, machine
from lib.options import add_console_round_options, add_run_options
from lib.procfs import loadavg, process_tree
from lib.procs import Server, free_port, wait_ready
from lib.rawhttp import RawPool, http_request
from lib.report import args_json, write_report
from lib.sched import client_policy, use_uvloop
from lib.services import POSTGRES, PgDatabase, bus_status, postgres_database, start_redis
from lib.stack import Stack, stack
from lib.staff import Session, login, make_users
from lib.tickets import open_tickets
from lib.tokens import token_turn

TARGET_P99_MS, TARGET_RATE = 50.0, 200.0  # the other-instance group's p99, at that rate
GROUPS = ("same instance", "other instance")


@dataclass
class Result:
    events: int  # measured turns (after warm-up)
    sent: int  # turns sent, warm-up included
    consoles: int  # connected
    lost: int  # (turn, console) pairs never received, warm-up included
    duplicates: int  # extra receptions of a (turn, console) pair
    closed_by_server: dict[str, int]
    lat: dict[str, dict[str, float]]  # group -> summary
    loads: list[LoadResult]
    achieved: float  # turns per second over all instances
    cpu: dict[str, float]
    cpu_line: str
    load_before: str

    def keeps_up(self) -> bool:
        return all(load.keeps_up() for load in self.loads)


def wait_bus_ok(servers: list[Server], timeout: float = 15.0) -> None:
    """Until every instance says its Redis bus is up (its subscriber has connected)."""
    deadline = time.monotonic() + timeout
    while True:
        states = {s.name: bus_status(s) for s in servers}
        if all(v == "ok" for v in states.values()):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"event bus not up after {timeout} s: {states}")
        time.sleep(0.2)


def run_round(*, st: Stack, servers: list[Server], sessions: list[Session], users: list[str],
              pg: PgDatabase, redis: Server, args: argparse.Namespace, run_id: str) -> Result:
    n = len(servers)
    run = f"c{run_id}"
    warm = int(args.warmup * args.rate)
    total = warm + int(args.duration * args.rate)
    # Turn s goes to servers[s % n]; load k sends turns k, k + n, k + 2n...
    requests = [[http_request("POST", st.hook_path, srv.port,
                              token_turn(users[s % len(users)], run, s))
                 for s in range(k, total, n)] for k, srv in enumerate(servers)]
    sizes = [args.consoles // n + (k < args.consoles % n) for k in range(n)]
    groups = [ConsoleGroup(ConsoleSpec(
        url=f"ws://127.0.0.1:{srv.port}/ws",
        headers=[s.ws_headers(f"http://127.0.0.1:{srv.port}") for s in sessions],
        count=size, token=run, compression=not args.no_compression, sched=args.client_sched),
        args.console_procs) for srv, size in zip(servers, sizes, strict=True)]
    try:
        ready = [g.wait_ready() for g in groups]
        connected = [r[0] for r in ready]
        if connected != sizes:
            raise SystemExit(f"only {connected} of {sizes} consoles connected "
                             f"({sum(r[1] for r in ready)} failed)")
        time.sleep(1.0)  # let the hello/presence frames pass
        load_before = loadavg()
        pids: dict[str, int | list[int]] = {
            f"server {s.name}": process_tree(s.proc.pid) for s in servers}
        pids.update({"consoles": [p for g in groups for p in g.pids],
                     "load generator": os.getpid(), "redis-server": redis.proc.pid,
                     "postgres": pg.backend_pids()})
        meter = CpuMeter(pids)
        meter.start()

        async def drive() -> list[LoadResult]:
            per = max(1, args.http_connections // n)
            pools = [await RawPool(srv.port, per).open() for srv in servers]
            try:
                return list(await asyncio.gather(*(
                    paced_load(pool, reqs, args.rate / n, offset=k / args.rate)
                    for k, (pool, reqs) in enumerate(zip(pools, requests, strict=True)))))
            finally:
                for pool in pools:
                    await pool.close()

        with client_policy(args.client_sched):
            loads = asyncio.run(drive())
        for g, c in zip(groups, connected, strict=True):
            g.drain(total * c, quiet=args.drain)
        meter.stop()
        results = [g.finish() for g in groups]
    finally:
        for g in groups:
            g.kill()

    send_ns = array("q", bytes(8 * total))
    for k, load in enumerate(loads):
        send_ns[k::n] = load.send_ns
    lats: dict[str, list[float]] = {g: [] for g in GROUPS}
    lost = dups = 0
    closed: dict[str, int] = {}
    for home, res in enumerate(results):
        for code, count in res["closed_by_server"].items():
            closed[code] = closed.get(code, 0) + count
        for seqs, times in zip(res["seqs"], res["times"], strict=True):
            seen: set[int] = set()
            for s, t in zip(seqs, times, strict=True):
                if s in seen:
                    dups += 1
                    continue
                seen.add(s)
                if s >= warm:
                    lats[GROUPS[s % n != home]].append((t - send_ns[s]) / 1e6)
            lost += total - len(seen)
    span = (max(send_ns) - min(send_ns)) / 1e9
    return Result(events=total - warm, sent=total, consoles=sum(connected), lost=lost,
                  duplicates=dups, closed_by_server=closed,
                  lat={g: summary(v) for g, v in lats.items()}, loads=loads,
                  achieved=(total - 1) / span if span > 0 else float("nan"),
                  cpu=meter.percent, cpu_line=meter.line(), load_before=load_before)


def report(r: Result, servers: list[Server], args: argparse.Namespace) -> bool:
    """Print the round's figures; whether every frame arrived."""
    print(f"rate {args.rate:g} turns/s over {len(servers)} instances x {r.consoles} consoles "
          f"({r.events} measured turns; load before {r.load_before}):")
    for g in GROUPS:
        print(f"  {g:14s} {fmt_ms(r.lat[g])}")
    same, other = r.lat["same instance"], r.lat["other instance"]
    print(f"  ratio other/same (baseline: same instance, same round): p50 "
          f"{other['p50'] / same['p50']:.1f}x, p99 {other['p99'] / same['p99']:.1f}x")
    print(f"  frames lost {r.lost} (must be 0), duplicates {r.duplicates}"
          + (f", closed by server {r.closed_by_server}" if r.closed_by_server else ""))
    print(f"  sent {r.achieved:.1f}/s of {args.rate:g}/s target")
    for srv, load in zip(servers, r.loads, strict=True):
        print(f"    instance {srv.name}: {load.line()}")
    print(f"  cpu (% of one core): {r.cpu_line}")
    ok = r.lost == 0 and not r.closed_by_server
    kept = r.keeps_up()
    if not kept:
        print(f"WARNING: the load generator did not keep up with {args.rate:g}/s (achieved "
              f"{r.achieved:.1f}/s): the servers are not answering fast enough, or this "
              "machine is too busy")
    p99 = other["p99"]
    verdict = ("met" if p99 <= TARGET_P99_MS and kept and ok else "MISSED") \
        if args.rate == TARGET_RATE else f"not judged at {args.rate:g} turns/s"
    print(f"other-instance p99 {p99:.1f} ms: target <= {TARGET_P99_MS:g} ms at "
          f"{TARGET_RATE:g} turns/s: {verdict}")
    return ok


def bare_round(st: Stack, sessions: list[Session], users: list[str],
               args: argparse.Namespace, run_id: str) -> Any:
    """One round of bench/bare_ws.py with every console on it, as bench/latency.py runs it."""
    import latency  # bench/latency.py: its calibration and its round, as they are

    frame = asyncio.run(latency.capture_frame(st, sessions[0], users[0]))
    template = st.tmp / "frame.json"
    template.write_text(json.dumps(frame))
    port = free_port()
    srv = st.spawn("bare", [sys.executable, str(latency.BARE_WS), "--port", str(port),
                            "--template", str(template)], port)
    wait_ready(srv)
    print(f"bare broadcast (bench/bare_ws.py, one process, {args.consoles} consoles):")
    r = latency.run_round(target="bare", rnd=1, rate=args.rate, port=port, path=st.hook_path,
                          server_pid=srv.proc.pid,
                          headers=[{"Origin": f"http://127.0.0.1:{port}"}], users=users,
                          args=args, run_id=run_id)
    st.stop(srv)
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--consoles", type=int, default=100, help="in all, spread over instances")
    p.add_argument("--rate", type=float, default=200, help="turns per second, in all")
    add_console_round_options(p)
    p.add_argument("--http-connections", type=int, default=64,
                   help="keep-alive connections in all, spread over instances")
    p.add_argument("--bare", action="store_true",
                   help="first, one round of the bare broadcast (bench/bare_ws.py)")
    p.add_argument("--postgres", default=POSTGRES,
                   help="PostgreSQL server (trust auth) the run's database is made on")
    add_run_options(p)
    p.add_argument("--smoke", action="store_true", help="a few seconds, small numbers")
    args = p.parse_args(argv)
    if args.smoke:
        args.consoles, args.rate, args.duration, args.warmup = 4, 40.0, 2, 0.5
        args.drain, args.users, args.logins, args.http_connections = 1, 10, 2, 8
    if args.instances < 2:
        p.error("--instances: at least 2")
    if args.consoles < args.instances:
        p.error("--consoles: at least one per instance")
    loop = use_uvloop()
    run_id = secrets.token_hex(3)
    with postgres_database(args.postgres, prefix="bench_cluster_") as pg, stack(
            source=args.source, keep=args.keep, prefix="bench-cluster-",
            extra_env={"CONNECTOR_DATABASE_URL": pg.url}) as st:
        redis = start_redis(st)
        servers = [st.start_connector()]
        servers[0].name = "a"  # named for the report; its log stays TMP/connector.log
        servers += [st.start_instance(chr(ord("a") + k)) for k in range(1, args.instances)]
        wait_bus_ok(servers)
        names = make_users(st, "sup", "supervisor", args.logins)
        sessions = [login(st, name) for name in names]
        users = [f"user-{i}" for i in range(args.users)]
        asyncio.run(open_tickets(st, users))
        print(f"machine: {machine()}; client loop {loop}; client processes {args.client_sched} "
              "scheduling")
        print(f"connector source: {describe(st.source)}")
        print(f"cluster: {args.instances} instances ("
              + ", ".join(f"{s.name} pid {s.proc.pid} port {s.port}" for s in servers)
              + f") on PostgreSQL database {pg.name}, redis-server pid {redis.proc.pid} port "
              f"{redis.port}")
        print(f"workload: {args.consoles} consoles spread over the instances "
              f"({args.logins} supervisor sessions, permessage-deflate "
              f"{'off' if args.no_compression else 'offered'}), {args.rate:g} turns/s in all, "
              f"alternating instances, from {args.users} end users with open tickets over "
              f"{args.http_connections} keep-alive connections, {args.warmup:g} s warm-up + "
              f"{args.duration:g} s; load {loadavg()}")
        bare = bare_round(st, sessions, users, args, run_id) if args.bare else None
        r = run_round(st=st, servers=servers, sessions=sessions, users=users, pg=pg,
                      redis=redis, args=args, run_id=run_id)
        st.check_alive()
        print()
        ok = report(r, servers, args)
        if bare is not None:
            b = bare.lat
            print(f"bare broadcast (separate round): {fmt_ms(b)}   lost {bare.lost}; ratio "
                  f"other/bare p99 {r.lat['other instance']['p99'] / b['p99']:.1f}x")
            ok = ok and bare.lost == 0
        if args.json:
            write_report(args.json, {
                "machine": machine(), "source": describe(st.source), "load_at_end": loadavg(),
                "args": args_json(args), "latency_ms": r.lat, "lost": r.lost,
                "duplicates": r.duplicates, "closed_by_server": r.closed_by_server,
                "achieved_rate": r.achieved, "cpu_percent": r.cpu,
                "load_before": r.load_before,
                "loads": [{"instance": s.name, "achieved_rate": load.achieved,
                           "send_lag_ms": load.lag_ms, "response_ms": load.latency_ms,
                           "statuses": load.statuses}
                          for s, load in zip(servers, r.loads, strict=True)],
                "bare_latency_ms": bare.lat if bare is not None else None})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
