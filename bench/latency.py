"""Event-to-console latency: a webhook turn's POST to its frame at every connected console.

    python3 bench/latency.py [--consoles 100] [--rate 500] [--duration 10] [--rounds 2]
    python3 bench/latency.py --smoke             # a few seconds, small numbers
    python3 bench/latency.py --profile /tmp/lat  # plus one connector round under py-spy

One run:

1. a temporary directory with a fresh SQLite database, `connector migrate`,
   one integration (`connector integration add --json`), one
   `connector serve` (one worker, default SQLite, log level warning);
2. `--logins` supervisor accounts (admin API), each signed in once; the
   consoles use these sessions round robin (a supervisor sees every event);
3. `--users` end users each send one `need_help` turn: every one of them now
   has an open ticket, so each further turn of theirs reaches the consoles as
   one `message.created` frame (turns carry no bot answer: the bot is muted
   during a handover, so one turn is one event is one frame per console);
4. one console captures the connector's `message.created` frame for a turn:
   `bench/bare_ws.py` (a bare Starlette WebSocket broadcast on the same uvicorn
   options) is started with it as the template of the frame it broadcasts;
5. rounds, alternating bare, connector, bare, connector: a child process
   (`lib.consoles`) opens `--consoles` WebSockets with the
   `websockets` library (permessage-deflate offered, as browsers do) and
   records, per console, the CLOCK_MONOTONIC arrival time of each frame
   carrying a benchmark token; this process then sends the turns at a steady
   `--rate` with an open-loop token bucket over `--http-connections`
   keep-alive connections, recording the time just before each POST is
   written (`lib.load.paced_load`); `--warmup` seconds of turns first, not
   counted;
6. latency of each (event, console) pair = arrival - send. Prints p50, p99
   and max per round and over all rounds for each target, the ratio
   connector/bare, frames lost, consoles the server closed, the achieved send
   rate (warns when below the target), the CPU use of the server, the
   consoles process and the load generator, the server's CPU per event and
   per (event, console) delivery, and for the connector what its threads
   were doing (`lib.threads.ThreadStates`).

`--rate 500,100,50` sweeps several rates in one run. `--targets` adds
`coalesced`: `bench/bare_ws.py --coalesce`, a prototype that sends each
console one WebSocket message per batch of events (see bare_ws.py).

The consoles and the load generator are separate processes, so neither
starves the other's event loop; with 2 vCPUs the server still shares the
machine with both (and with whatever else runs): the CPU line of each round
shows who was busy.

Exit status: 0 when every console stayed connected and got every frame; 1
otherwise. The latency target and the achieved send rate are reported (with a
warning when the rate fell short), not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import profiles
from lib.consoles import ConsoleGroup, ConsoleSpec
from lib.cpu import CpuMeter
from lib.figures import fmt_ms, summary
from lib.load import LoadResult, paced_load
from lib.machine import describe, machine
from lib.procfs import loadavg, process_tree
from lib.procs import free_port, wait_ready
from lib.rawhttp import RawPool, http_request
from lib.report import args_json, write_report
from lib.sched import CLIENT_SCHED_HELP, client_policy, use_uvloop
from lib.stack import Stack, stack
from lib.staff import Session, login, make_users
from lib.threads import ThreadStates
from lib.tickets import open_tickets
from lib.tokens import token_re, token_turn

HERE = Path(__file__).resolve().parent
BARE_WS = HERE / "bare_ws.py"
TARGET_P99_MS = 50.0


@dataclass
class Round:
    target: str
    rate: float
    round: int
    consoles: int
    events: int  # measured events (after warm-up)
    pairs: int  # (event, console) pairs received
    lost: int  # pairs expected but not received
    lat: dict[str, float]
    load: LoadResult
    cpu: dict[str, float]
    closed_by_server: dict[str, int]
    load_before: str
    server_cpu_s: float = 0.0  # server CPU seconds from the first POST to the last frame
    frames: int = 0  # frames the consoles received in that time (all types)
    total_events: int = 0  # events sent in that time (warm-up included)
    delivered: int = 0  # (event, console) pairs delivered in that time
    latencies: list[float] = field(default_factory=list, repr=False)

    def line(self) -> str:
        return (f"  round {self.round} {self.target:9s} {fmt_ms(self.lat)}   lost {self.lost}"
                f"   (load {self.load_before})")


async def capture_frame(st: Stack, session: Session, user: str) -> dict[str, Any]:
    """The connector's `message.created` frame for one turn of `user` (its ticket is open)."""
    import websockets

    run = "cal" + secrets.token_hex(3)
    async with websockets.connect(f"ws://127.0.0.1:{st.port}/ws",
                                  additional_headers=session.ws_headers(st.base)) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        pool = await RawPool(st.port, 1).open()
        try:
            status, body = (await pool.run_all([http_request(
                "POST", st.hook_path, st.port, token_turn(user, run, 0))]))[0]
        finally:
            await pool.close()
        if status != 200:
            raise SystemExit(f"calibration turn: HTTP {status} {body[:200]!r}")
        rx = token_re(run)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = await asyncio.wait_for(ws.recv(), 10)
            if not rx.search(msg):
                continue
            # A message is one frame or an array of frames (the connector coalesces).
            parsed = json.loads(msg)
            for frame in parsed if isinstance(parsed, list) else [parsed]:
                if rx.search(json.dumps(frame, ensure_ascii=False)):
                    if frame["type"] != "message.created":
                        raise SystemExit(f"calibration: unexpected frame {frame['type']}")
                    return frame
    raise SystemExit("calibration: no message.created frame for the turn")


def run_round(*, target: str, rnd: int, rate: float, port: int, path: str, server_pid: int,
              headers: list[dict[str, str]], users: list[str], args: argparse.Namespace,
              run_id: str) -> Round:
    run = f"r{run_id}{target[0]}{rnd}n{int(rate)}"
    warm = int(args.warmup * rate)
    total = warm + int(args.duration * rate)
    requests = [http_request("POST", path, port, token_turn(users[i % len(users)], run, i))
                for i in range(total)]
    spec = ConsoleSpec(url=f"ws://127.0.0.1:{port}/ws", headers=headers, count=args.consoles,
                       token=run, compression=not args.no_compression, sched=args.client_sched)
    consoles = ConsoleGroup(spec, args.console_procs)
    try:
        connected, failed, took = consoles.wait_ready()
        if connected != args.consoles:
            raise SystemExit(f"{target}: only {connected} of {args.consoles} consoles connected"
                             f" ({failed} failed)")
        time.sleep(1.0)  # let the hello/presence frames pass
        load_before = loadavg()
        pids: dict[str, int | list[int]] = {"server": process_tree(server_pid),
                                             "load generator": os.getpid()}
        pids.update({f"consoles{'' if len(consoles.pids) == 1 else i + 1}": pid
                     for i, pid in enumerate(consoles.pids)})
        meter = CpuMeter(pids)
        meter.start()

        async def drive() -> LoadResult:
            pool = await RawPool(port, args.http_connections).open()
            try:
                return await paced_load(pool, requests, rate)
            finally:
                await pool.close()

        frames0 = consoles.count()[1]
        states = ThreadStates(server_pid).start() if target == "connector" else None
        with client_policy(args.client_sched):
            load = asyncio.run(drive())
        drained = consoles.drain(total * connected, quiet=args.drain)
        cpu = meter.stop()
        if states is not None:
            states.stop()
        frames = consoles.count()[1] - frames0
        result = consoles.finish()
    finally:
        consoles.kill()

    send_ns = load.send_ns
    lats: list[float] = []
    got = 0
    for seqs, times in zip(result["seqs"], result["times"], strict=True):
        for s, t in zip(seqs, times, strict=True):
            if s >= warm:
                got += 1
                lats.append((t - send_ns[s]) / 1e6)
    delivered = sum(len(x) for x in result["seqs"])  # (event, console) pairs, warm-up too
    events = total - warm
    expected = events * result["connected"]
    r = Round(target=target, rate=rate, round=rnd, consoles=result["connected"], events=events,
              pairs=got, lost=expected - got, lat=summary(lats), load=load, cpu=cpu,
              closed_by_server=result["closed_by_server"], load_before=load_before,
              latencies=lats, server_cpu_s=meter.cpu_s["server"], frames=frames,
              total_events=total, delivered=delivered)
    print(r.line())
    print(f"      {load.line()}")
    print(f"      server CPU {1e3 * r.server_cpu_s / total:.2f} ms per event, "
          f"{1e6 * r.server_cpu_s / max(1, delivered):.1f} µs per event delivered to a "
          f"console ({delivered} such, in {frames} WebSocket messages; drained in "
          f"{drained:.1f} s)")
    print(f"      cpu (% of one core): {meter.line()}; consoles connected in {took:.1f} s"
          + (f"; closed by server: {r.closed_by_server}" if r.closed_by_server else ""))
    if states is not None:
        print("      server threads (% of the round, from /proc/PID/task/*/syscall): "
              + "; ".join(states.lines()))
    if not load.keeps_up():
        print(f"      WARNING: the load generator did not keep up with {rate:g}/s "
              f"(achieved {load.achieved:.1f}/s, lag p99 {load.lag_ms['p99']:.1f} ms): the "
              "server is not answering fast enough, or this machine is too busy")
    return r


def _server_compression() -> bool:
    """What `connector serve` (and the baselines, see bare_app.serve) will decide."""
    from connector.settings import Settings

    return Settings().ws_compression


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--consoles", type=int, default=100)
    p.add_argument("--rate", type=_rates, default=[500.0],
                   help="turns per second; a comma-separated list sweeps several rates")
    p.add_argument("--duration", type=float, default=10, help="measured seconds per round")
    p.add_argument("--warmup", type=float, default=2, help="seconds of turns first, not counted")
    p.add_argument("--drain", type=float, default=3,
                   help="stop waiting for late frames after this many quiet seconds")
    p.add_argument("--rounds", type=int, default=2, help="rounds of every target per rate")
    p.add_argument("--users", type=int, default=200, help="end users with an open ticket")
    p.add_argument("--logins", type=int, default=10, help="supervisor sessions")
    p.add_argument("--http-connections", type=int, default=64)
    p.add_argument("--console-procs", type=int, default=1,
                   help="client processes the consoles are spread over")
    p.add_argument("--client-sched", choices=("batch", "normal"), default="batch",
                   help=CLIENT_SCHED_HELP)
    p.add_argument("--no-compression", action="store_true",
                   help="consoles do not offer permessage-deflate")
    p.add_argument("--targets", default="bare,connector",
                   help="comma-separated, in round order, from: bare, connector, coalesced "
                        "(bare_ws.py --coalesce, a prototype of batching frames)")
    p.add_argument("--profile", metavar="PREFIX",
                   help="one more connector round under py-spy (not counted): PREFIX.txt "
                        "(collapsed stacks) and PREFIX.svg")
    p.add_argument("--source", type=Path, default=HERE.parent,
                   help="checkout whose `connector` package is benchmarked")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--smoke", action="store_true", help="a few seconds, small numbers")
    args = p.parse_args(argv)
    if args.smoke:
        args.consoles, args.rate, args.duration, args.warmup = 5, [50.0], 2, 0.5
        args.drain, args.rounds, args.users, args.logins = 1, 1, 10, 2
        args.http_connections = 8
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not wanted or set(wanted) - {"bare", "connector", "coalesced"}:
        p.error("--targets: choose from bare, connector, coalesced")
    loop = use_uvloop()
    run_id = secrets.token_hex(3)
    runs: list[Round] = []
    ok = True
    with stack(source=args.source, keep=args.keep) as st:
        conn = st.start_connector()
        names = make_users(st, "sup", "supervisor", args.logins)
        sessions = [login(st, n) for n in names]
        users = [f"user-{i}" for i in range(args.users)]
        asyncio.run(open_tickets(st, users))
        frame = asyncio.run(capture_frame(st, sessions[0], users[0]))
        template = st.tmp / "frame.json"
        template.write_text(json.dumps(frame))
        frame_bytes = len(json.dumps(frame, separators=(",", ":")))
        targets = {"connector": (st.port, conn.proc.pid,
                                 [s.ws_headers(st.base) for s in sessions])}
        for name, extra in (("bare", []), ("coalesced", ["--coalesce"])):
            if name in wanted:
                port = free_port()
                srv = st.spawn(name, [sys.executable, str(BARE_WS), "--port", str(port),
                                      "--template", str(template), *extra], port)
                wait_ready(srv)
                targets[name] = (port, srv.proc.pid, [{"Origin": f"http://127.0.0.1:{port}"}])
        print(f"machine: {machine()}; client loop {loop}; client processes {args.client_sched} "
                  "scheduling")
        print(f"connector source: {describe(st.source)}")
        print(f"workload: {args.consoles} consoles in {args.console_procs} process(es) "
              f"({args.logins} supervisor sessions, permessage-deflate "
              f"{'off' if args.no_compression else 'offered'}, servers "
              f"{'accept it' if _server_compression() else 'decline it'} "
              "[CONNECTOR_WS_COMPRESSION]), "
              f"{'/'.join(f'{r:g}' for r in args.rate)} turns/s from {args.users} end users "
              f"with open tickets over {args.http_connections} keep-alive connections, "
              f"{args.warmup:g} s warm-up + {args.duration:g} s per round, {args.rounds} "
              f"round(s) of {', '.join(wanted)}; frame {frame_bytes} bytes; pids "
              + ", ".join(f"{k} {v[1]}" for k, v in targets.items()) + f"; load {loadavg()}")
        for rate in args.rate:
            print(f"rate {rate:g} turns/s:")
            for rnd in range(1, args.rounds + 1):
                for target in wanted:
                    port, pid, headers = targets[target]
                    r = run_round(target=target, rnd=rnd, rate=rate, port=port,
                                  path=st.hook_path, server_pid=pid, headers=headers,
                                  users=users, args=args, run_id=run_id)
                    st.check_alive()
                    runs.append(r)
                    ok = ok and r.lost == 0 and not r.closed_by_server
        report(runs, args)
        if args.profile:
            profile(st, conn.proc.pid, sessions, users, args, run_id)
        if args.json:
            write_report(args.json, {
                "machine": machine(), "source": describe(st.source), "load_at_end": loadavg(),
                "args": args_json(args), "frame_bytes": frame_bytes,
                "runs": [{"target": r.target, "rate": r.rate, "round": r.round,
                          "consoles": r.consoles, "events": r.events, "pairs": r.pairs,
                          "lost": r.lost, "latency_ms": r.lat, "cpu_percent": r.cpu,
                          "server_cpu_ms_per_event": 1e3 * r.server_cpu_s / r.total_events,
                          "server_cpu_us_per_delivery": 1e6 * r.server_cpu_s
                          / max(1, r.delivered), "messages": r.frames,
                          "load_before": r.load_before, "achieved_rate": r.load.achieved,
                          "send_lag_ms": r.load.lag_ms, "response_ms": r.load.latency_ms,
                          "closed_by_server": r.closed_by_server} for r in runs]})
    return 0 if ok else 1


def _rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def report(runs: list[Round], args: argparse.Namespace) -> None:
    print()
    for rate in args.rate:
        totals: dict[str, dict[str, float]] = {}
        print(f"rate {rate:g} turns/s x {args.consoles} consoles:")
        for target in ("bare", "coalesced", "connector"):
            rs = [r for r in runs if r.target == target and r.rate == rate]
            if not rs:
                continue
            totals[target] = summary([x for r in rs for x in r.latencies])
            lost = sum(r.lost for r in rs)
            sent = min(r.load.achieved for r in rs)
            n = sum(r.delivered for r in rs)
            cpu = sum(r.server_cpu_s for r in rs) / n * 1e6 if n else float("nan")
            closed = sum(sum(r.closed_by_server.values()) for r in rs)
            print(f"  {target:9s} {fmt_ms(totals[target])}   lost {lost}"
                  f"{f' (closed by server {closed})' if closed else ''}   sent >= {sent:.0f}/s"
                  f"   server {cpu:.0f} µs CPU per delivery")
        if "bare" in totals and "connector" in totals:
            b, c = totals["bare"], totals["connector"]
            print(f"  ratio connector/bare: p50 {c['p50'] / b['p50']:.1f}x, "
                  f"p99 {c['p99'] / b['p99']:.1f}x")
        if "connector" in totals:
            p99 = totals["connector"]["p99"]
            kept = all(r.load.keeps_up() and not r.closed_by_server and r.lost == 0
                       for r in runs if r.target == "connector" and r.rate == rate)
            print(f"  connector p99 {p99:.1f} ms: target <= {TARGET_P99_MS:g} ms "
                  + ("met" if p99 <= TARGET_P99_MS and kept else "MISSED"))
    slow = [r for r in runs if not r.load.keeps_up()]
    if slow:
        print(f"WARNING: {len(slow)} round(s) did not send at the target rate: see above")


def profile(st: Stack, pid: int, sessions: list[Session], users: list[str],
            args: argparse.Namespace, run_id: str) -> None:
    """One more connector round under py-spy, twice: collapsed stacks, then a flame graph."""
    for n, fmt, out in profiles.outputs(args.profile):
        with profiles.recording(pid, out, int(args.warmup + args.duration + 4), fmt,
                                timeout=180):
            print(f"profiled round (not counted) -> {out}")
            run_round(target="connector", rnd=100 + n, rate=args.rate[0], port=st.port,
                      path=st.hook_path, server_pid=pid,
                      headers=[s.ws_headers(st.base) for s in sessions], users=users,
                      args=args, run_id=run_id)


if __name__ == "__main__":
    sys.exit(main())
