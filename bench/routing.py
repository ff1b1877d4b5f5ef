"""Handover-to-assignment latency: a need_help turn's POST to its routed assignment at the
agent's console.

    python3 bench/routing.py [--agents 50] [--rate 200] [--duration 10] [--warmup 2]
    python3 bench/routing.py --database postgresql [--instances 2]
    python3 bench/routing.py --smoke            # a few seconds, 5 agents, 20/s

One run:

1. a fresh database (SQLite in a temporary directory; with `--database
   postgresql` a new database on `--postgres`, and with `--instances N` that
   many `connector serve` processes on it with a redis-server of the run's own
   as their bus), one integration, `CONNECTOR_ROUTING=auto` and
   `CONNECTOR_AGENT_CAPACITY` = the run's handover count, at most 1000 (the
   setting's limit): any one agent could take every handover, or at least
   1000, so with the default 50 agents at 200/s (2400 handovers, 48 each when
   spread evenly) capacity never runs out and every handover can be assigned
   (the server line says whether agents x capacity covers the run);
2. `--agents` agent accounts (admin API), each signed in, each with one
   console (`lib.consoles`, one child process per instance, agents spread
   over the instances in turn), then each `PATCH /api/me {"status":
   "online"}`; the run waits until `GET /api/agents` shows every agent online
   and connected (an agent is available only with a live console);
3. handovers at a steady `--rate` for `--warmup` + `--duration` seconds (the
   warm-up not counted), each a Smartly need_help turn from a new end user
   whose id is the handover's benchmark token (`lib.tokens.handover_turn`), so
   every ticket frame about it carries the token in its summary's `end_user`;
   sent open loop (`lib.load.spread_load`, alternating instances), with the
   time just before each POST is written (t0);
4. every console records the arrival time and the kind of each frame carrying
   a token of the run (`ConsoleSpec.kinds`: `ticket.created`, or
   `ticket.updated` with state `assigned`; both are public, so every console
   receives both for every handover);
5. after the run the database tells, per handover, its assignee, `opened_at`
   and `assigned_at`, and its `assigned` transitions.

Per measured handover, at the assignee's console:

* baseline `created` = arrival of its `ticket.created` frame - t0: the
  handover becoming visible, which every handover costs with routing or
  without, measured in the same run, at the same console, under the same load;
* `assigned` = arrival of its `ticket.updated` frame with state `assigned` - t0;

printed as p50/p99/max each, the ratio assigned/created, and the routing
delay alone (assigned - created at that console). Also: the server's own
figure (`assigned_at - opened_at` from the database), handovers not assigned,
double assignments (more than one `assigned` transition of a ticket, or more
than one with reason `routing`), frames lost or duplicated (over every
console, warm-up included), the assignment spread over the agents (min/max
tickets per agent), the achieved send rate with the send lag behind schedule
(a warning when the rate was not reached), and the CPU of the servers, the
consoles processes, the load generator (this process) and, on PostgreSQL, of
redis-server and the database's backends. With 2 vCPUs the clients share the
machine with the servers: the CPU line shows who was busy, and the load
generator's lag shows whether it kept its schedule.

Exit status: 0 when every handover was assigned once, no console was closed
and every console got every frame; 1 otherwise. Latency and rate are reported,
not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

from cluster import wait_bus_ok
from lib.consoles import FRAME_KINDS, ConsoleGroup, ConsoleSpec
from lib.cpu import CpuMeter
from lib.figures import fmt_ms, summary
from lib.load import LoadResult, send_times, spread_load
from lib.machine import describe, machine
from lib.options import add_client_options, add_run_options, add_timing_options
from lib.procfs import loadavg, process_tree
from lib.procs import Server
from lib.rawhttp import http_request
from lib.report import args_json, write_report
from lib.sched import client_policy, use_uvloop
from lib.services import POSTGRES, PgDatabase, postgres_database, rows, start_redis
from lib.stack import Stack, stack
from lib.staff import Session, admin_client, login, make_users, set_status
from lib.tokens import handover_turn

CREATED, ASSIGNED = FRAME_KINDS.index("ticket.created"), FRAME_KINDS.index(
    "ticket.updated assigned")
MAX_CAPACITY = 1000  # CONNECTOR_AGENT_CAPACITY's upper bound

#: Per handover of the run (end user `<run>x<seq>y`): its ticket as the database has it.
TICKETS = """
SELECT c.end_user_id, t.state, t.opened_at, t.assigned_at, u.username,
       (SELECT count(*) FROM ticket_transition x
         WHERE x.ticket_id = t.id AND x.action = 'assigned') AS assigned,
       (SELECT count(*) FROM ticket_transition x
         WHERE x.ticket_id = t.id AND x.action = 'assigned' AND x.reason = 'routing') AS routed
FROM ticket t JOIN conversation c ON c.id = t.conversation_id
LEFT JOIN app_user u ON u.id = t.assignee_id
WHERE c.end_user_id LIKE $1
"""


@dataclass
class Ticket:
    state: str
    server_ms: float | None  # assigned_at - opened_at
    assignee: str | None
    assigned: int  # 'assigned' transitions
    routed: int  # of them, with reason 'routing'


@dataclass
class Frames:
    """What the consoles received: per console, per handover, the first arrival of each
    kind; and what was missing or repeated."""

    created: list[dict[int, int]]
    assigned: list[dict[int, int]]
    lost: int
    duplicates: int
    other: int  # tokens in frames of other kinds (none expected)


def _when(value: Any) -> dt.datetime:
    """A timestamp as SQLite (the connector's text) or asyncpg (naive UTC) gives it."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def read_tickets(database: Any, run: str) -> dict[int, Ticket]:
    """The run's tickets by handover number, read from the database after the run."""
    out = {}
    for user, state, opened, assigned_at, assignee, assigned, routed in rows(
            database, TICKETS, f"{run}x%"):
        server_ms = None
        if opened is not None and assigned_at is not None:
            server_ms = (_when(assigned_at) - _when(opened)).total_seconds() * 1e3
        out[int(user[len(run) + 1:-1])] = Ticket(state, server_ms, assignee, int(assigned),
                                                 int(routed))
    return out


def collect(result: dict[str, Any], total: int) -> Frames:
    """Arrivals by console and handover, from a consoles process's result."""
    created: list[dict[int, int]] = []
    assigned: list[dict[int, int]] = []
    dups = lost = other = 0
    for seqs, times, kinds in zip(result["seqs"], result["times"], result["kinds"],
                                  strict=True):
        c: dict[int, int] = {}
        a: dict[int, int] = {}
        for s, t, k in zip(seqs, times, kinds, strict=True):
            into = c if k == CREATED else a if k == ASSIGNED else None
            if into is None:
                other += 1
                continue
            if s in into:
                dups += 1
            else:
                into[s] = t
        lost += 2 * total - len(c) - len(a)
        created.append(c)
        assigned.append(a)
    return Frames(created, assigned, lost, dups, other)


def wait_available(st: Stack, agents: list[str], timeout: float = 30.0) -> None:
    """Until `GET /api/agents` shows every agent online with a console connected."""
    admin = admin_client(st)
    try:
        deadline = time.monotonic() + timeout
        while True:
            listed = {a["username"]: a for a in admin.get("/api/agents").json()["agents"]}
            missing = [n for n in agents if listed.get(n, {}).get("status") != "online"
                       or not listed[n].get("connected")]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"agents not available after {timeout} s: {missing[:5]}")
            time.sleep(0.2)
    finally:
        admin.close()


def run(st: Stack, servers: list[Server], sessions: list[Session], pg: PgDatabase | None,
        redis: Server | None, args: argparse.Namespace, token: str) -> dict[str, Any]:
    """Consoles up, agents online, the handovers sent and drained; the figures."""
    n = len(servers)
    warm = int(args.warmup * args.rate)
    total = warm + int(args.duration * args.rate)
    # Agent k's console is on servers[k % n]; groups[j] holds agents j, j + n, ...
    homes = [list(range(j, len(sessions), n)) for j in range(n)]
    groups = [ConsoleGroup(ConsoleSpec(
        url=f"ws://127.0.0.1:{srv.port}/ws",
        headers=[sessions[k].ws_headers(f"http://127.0.0.1:{srv.port}") for k in home],
        count=len(home), token=token, compression=not args.no_compression,
        sched=args.client_sched, kinds=True)) for srv, home in zip(servers, homes, strict=True)]
    try:
        for g, home in zip(groups, homes, strict=True):
            connected, failed, _ = g.wait_ready()
            if connected != len(home):
                raise SystemExit(f"only {connected} of {len(home)} consoles connected "
                                 f"({failed} failed)")
        for s in sessions:
            set_status(st, s, "online")
        wait_available(st, [s.username for s in sessions])
        time.sleep(1.0)  # let the presence and status frames pass
        load_before = loadavg()
        pids: dict[str, int | list[int]] = {
            ("server" if n == 1 else f"server {s.name}"): process_tree(s.proc.pid)
            for s in servers}
        pids.update({"consoles": [p for g in groups for p in g.pids],
                     "load generator": os.getpid()})
        if redis is not None:
            pids["redis-server"] = redis.proc.pid
        if pg is not None:
            pids["postgres"] = pg.backend_pids()
        meter = CpuMeter(pids)
        meter.start()

        def make(seq: int, port: int) -> bytes:
            return http_request("POST", st.hook_path, port, handover_turn(token, seq))

        with client_policy(args.client_sched):
            loads = asyncio.run(spread_load([s.port for s in servers], make, total, args.rate,
                                            args.http_connections))
        for g, home in zip(groups, homes, strict=True):
            g.drain(2 * total * len(home), quiet=args.drain)
        meter.stop()
        results = [g.finish() for g in groups]
    finally:
        for g in groups:
            g.kill()

    # Console results back in agent order: agent k is console k // n of group k % n.
    merged: dict[str, Any] = {"seqs": [], "times": [], "kinds": []}
    for k in range(len(sessions)):
        for key in merged:
            merged[key].append(results[k % n][key][k // n])
    frames = collect(merged, total)
    closed: dict[str, int] = {}
    for r in results:
        for code, count in r["closed_by_server"].items():
            closed[code] = closed.get(code, 0) + count
    database = pg.url if pg is not None else st.db
    tickets = read_tickets(database, token)
    send_ns = send_times(loads)
    agent_of = {s.username: k for k, s in enumerate(sessions)}

    lat: dict[str, list[float]] = {"created": [], "assigned": [], "routing": [], "server": []}
    missing_at_assignee = 0
    for seq in range(warm, total):
        t = tickets.get(seq)
        if t is None or t.assignee not in agent_of:
            continue
        if t.server_ms is not None:
            lat["server"].append(t.server_ms)
        k = agent_of[t.assignee]
        c, a = frames.created[k].get(seq), frames.assigned[k].get(seq)
        if c is None or a is None:
            missing_at_assignee += 1
            continue
        lat["created"].append((c - send_ns[seq]) / 1e6)
        lat["assigned"].append((a - send_ns[seq]) / 1e6)
        lat["routing"].append((a - c) / 1e6)

    # The server's delay early and late in the run: growing, routing fell behind.
    tenth = max(1, len(lat["server"]) // 10)
    trend = (summary(lat["server"][:tenth])["p50"], summary(lat["server"][-tenth:])["p50"])
    per_agent = dict.fromkeys(agent_of, 0)
    for t in tickets.values():
        if t.state == "assigned" and t.assignee in per_agent:
            per_agent[t.assignee] += 1
    span = (max(send_ns) - min(send_ns)) / 1e9
    return {
        "sent": total, "measured": total - warm, "load_before": load_before,
        "lat": {k: summary(v) for k, v in lat.items()}, "server_trend_ms": trend,
        "stored": len(tickets),
        "not_assigned": sum(1 for s in range(total)
                            if s not in tickets or tickets[s].state != "assigned"),
        "double": sum(1 for t in tickets.values() if t.assigned > 1 or t.routed > 1),
        "not_routing": sum(1 for t in tickets.values() if t.assigned == 1 and t.routed == 0),
        "lost": frames.lost, "duplicates": frames.duplicates, "other": frames.other,
        "missing_at_assignee": missing_at_assignee, "closed_by_server": closed,
        "per_agent": per_agent, "loads": loads,
        "achieved": (total - 1) / span if span > 0 else float("nan"),
        "cpu": meter.percent, "cpu_line": meter.line(), "cpu_seconds": meter.seconds,
    }


def report(r: dict[str, Any], servers: list[Server], args: argparse.Namespace,
           capacity: int) -> bool:
    """Print the figures; whether every handover was assigned once and seen by all."""
    lat = r["lat"]
    print(f"rate {args.rate:g} handovers/s, {r['measured']} measured of {r['sent']} sent, "
          f"{args.agents} agents (load before {r['load_before']}):")
    print(f"  created  (baseline) {fmt_ms(lat['created'])}")
    print(f"  assigned            {fmt_ms(lat['assigned'])}")
    created, assigned = lat["created"], lat["assigned"]
    print(f"  ratio assigned/created (baseline: ticket.created at the same console, same "
          f"run): p50 {assigned['p50'] / created['p50']:.1f}x, p99 "
          f"{assigned['p99'] / created['p99']:.1f}x, max {assigned['max'] / created['max']:.1f}x")
    print(f"  routing alone (assigned - created, same console) {fmt_ms(lat['routing'])}")
    print(f"  server (assigned_at - opened_at, database) {fmt_ms(lat['server'])}")
    early, late = r["server_trend_ms"]
    print(f"    p50 over the first tenth of the measured handovers {early:.1f} ms, over the "
          f"last tenth {late:.1f} ms")
    spread = r["per_agent"].values()
    print(f"  handovers stored {r['stored']} of {r['sent']}, not assigned {r['not_assigned']} "
          f"(must be 0: capacity {capacity} per agent), double assignments {r['double']} "
          f"(must be 0), assigned otherwise than by routing {r['not_routing']}")
    print(f"  assignments per agent: min {min(spread)}, max {max(spread)} (warm-up included)")
    print(f"  frames lost {r['lost']} (must be 0), duplicates {r['duplicates']}, other frames "
          f"with a token {r['other']}, missing at the assignee's console "
          f"{r['missing_at_assignee']}"
          + (f", closed by server {r['closed_by_server']}" if r["closed_by_server"] else ""))
    print(f"  sent {r['achieved']:.1f}/s of {args.rate:g}/s target")
    for srv, load in zip(servers, r["loads"], strict=True):
        print(f"    {'' if len(servers) == 1 else f'instance {srv.name}: '}{load.line()}")
    print(f"  cpu (% of one core, over {r['cpu_seconds']:.1f} s: sending and draining): "
          f"{r['cpu_line']}")
    if not all(load.keeps_up() for load in r["loads"]):
        print(f"WARNING: the load generator did not keep up with {args.rate:g}/s (achieved "
              f"{r['achieved']:.1f}/s): the server is not answering fast enough, or this "
              "machine is too busy")
    if late > 2 * early + 100:
        print("WARNING: routing fell behind the handovers (the server's delay grew from "
              f"{early:.0f} to {late:.0f} ms during the run): the queue grew, so the "
              "assignment figures grow with the run's length")
    return (r["lost"] == 0 and r["double"] == 0 and r["not_assigned"] == 0
            and r["missing_at_assignee"] == 0 and not r["closed_by_server"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--rate", type=float, default=200, help="handovers per second, in all")
    add_timing_options(p, "handovers")
    p.add_argument("--http-connections", type=int, default=64,
                   help="keep-alive connections in all, spread over instances")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--postgres", default=POSTGRES,
                   help="PostgreSQL server (trust auth) for --database postgresql")
    p.add_argument("--instances", type=int, default=1,
                   help="connector serve processes (more than one: --database postgresql, "
                        "with a redis-server of the run's own as the bus)")
    add_client_options(p)
    add_run_options(p)
    p.add_argument("--smoke", action="store_true", help="a few seconds, 5 agents, 20/s")
    args = p.parse_args(argv)
    if args.smoke:
        args.agents, args.rate, args.duration, args.warmup = 5, 20.0, 2, 0.5
        args.drain, args.http_connections = 1, 8
    if args.instances > 1 and args.database != "postgresql":
        p.error("--instances above 1 needs --database postgresql")
    if args.agents < args.instances:
        p.error("--agents: at least one per instance")
    loop = use_uvloop()
    token = f"rt{secrets.token_hex(3)}"
    total = int(args.warmup * args.rate) + int(args.duration * args.rate)
    capacity = min(MAX_CAPACITY, total)
    with contextlib.ExitStack() as ex:
        pg = (ex.enter_context(postgres_database(args.postgres, prefix="bench_routing_"))
              if args.database == "postgresql" else None)
        env = {"CONNECTOR_ROUTING": "auto", "CONNECTOR_AGENT_CAPACITY": str(capacity)}
        if pg is not None:
            env["CONNECTOR_DATABASE_URL"] = pg.url
        st = ex.enter_context(stack(source=args.source, keep=args.keep,
                                    prefix="bench-routing-", extra_env=env))
        redis = start_redis(st) if args.instances > 1 else None
        servers = [st.start_connector()]
        servers[0].name = "a"
        servers += [st.start_instance(chr(ord("a") + k)) for k in range(1, args.instances)]
        if redis is not None:
            wait_bus_ok(servers)
        names = make_users(st, "agent", "agent", args.agents)
        sessions = [login(st, name) for name in names]
        print(f"machine: {machine()}; client loop {loop}; client processes {args.client_sched} "
              "scheduling")
        print(f"connector source: {describe(st.source)}")
        where = ("SQLite" if pg is None else f"PostgreSQL database {pg.name}"
                 + (f", redis-server port {redis.port}" if redis is not None else ""))
        enough = capacity * args.agents >= total
        print(f"server: {args.instances} connector serve on {where}; CONNECTOR_ROUTING=auto, "
              f"CONNECTOR_AGENT_CAPACITY={capacity} ({args.agents} agents x {capacity} "
              f"{'>=' if enough else '<'} {total} handovers: "
              + ("capacity cannot run out)" if enough else "capacity MAY RUN OUT)"))
        print(f"workload: {args.agents} agents online, one console each (permessage-deflate "
              f"{'off' if args.no_compression else 'offered'}), {args.rate:g} handovers/s "
              f"from new end users over {args.http_connections} keep-alive connections, "
              f"{args.warmup:g} s warm-up + {args.duration:g} s; load {loadavg()}")
        r = run(st, servers, sessions, pg, redis, args, token)
        st.check_alive()
        print()
        ok = report(r, servers, args, capacity)
        if args.json:
            write_report(args.json, {
                "machine": machine(), "source": describe(st.source), "load_at_end": loadavg(),
                "args": args_json(args), "capacity": capacity, "latency_ms": r["lat"],
                **{k: r[k] for k in ("sent", "measured", "stored", "not_assigned", "double",
                                     "not_routing", "lost", "duplicates", "other",
                                     "missing_at_assignee", "closed_by_server", "per_agent",
                                     "achieved", "load_before", "server_trend_ms")},
                "cpu_percent": r["cpu"],
                "loads": [_load_json(s, load) for s, load in zip(servers, r["loads"],
                                                                  strict=True)]})
    print("checks ok" if ok else "CHECKS FAILED")
    return 0 if ok else 1


def _load_json(server: Server, load: LoadResult) -> dict[str, Any]:
    return {"instance": server.name, "achieved_rate": load.achieved, "send_lag_ms": load.lag_ms,
            "response_ms": load.latency_ms, "statuses": load.statuses}


if __name__ == "__main__":
    sys.exit(main())
