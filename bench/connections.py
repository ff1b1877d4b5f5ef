"""Idle consoles per process: how many WebSockets one server holds, and RSS per connection.

    python3 bench/connections.py [--connections 10000] [--heartbeat 5] [--hold 30]
    python3 bench/connections.py --smoke     # a few seconds, 100 connections

For each target, the bare WebSocket app (`bench/bare_ws.py --heartbeat`) and
then one `connector serve` (CONNECTOR_WS_HEARTBEAT_SECONDS=--heartbeat), each
on a fresh process:

1. the fd limit is raised (`resource.setrlimit`, inherited by the servers; the
   client processes raise their own);
2. connector only: `--sessions` agent accounts (admin API), each signed in
   once; the consoles use these sessions round robin (an agent console is the
   common case);
3. warm-up: 20 consoles open and close (lazy imports, first allocations);
   then the server's VmRSS (/proc/PID/status) is read: *before*;
4. `--client-procs` child processes (`lib.consoles`, the `websockets`
   library, permessage-deflate offered as browsers do, no client pings) open
   `--connections` consoles between them, `--connect-concurrency` at a time
   per process; the connect time is printed;
5. the consoles are held idle for `--hold` seconds; the server's VmRSS is
   sampled every second (the maximum is kept) and its CPU use measured (the
   cost of idle consoles and their heartbeats);
6. checks: every console connected, none was closed by the server, and each
   received at least floor(hold / heartbeat) - 1 heartbeat frames;
7. prints RSS before, after connecting and the maximum while holding, KiB per
   connection = (max RSS - before) / connections, open fds, and the ratio
   connector/bare.

Exit status: 0 when every check passes (the memory target is reported, not
enforced); 1 otherwise.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lib import profiles
from lib.consoles import ConsoleGroup, Consoles, ConsoleSpec
from lib.cpu import CpuMeter
from lib.machine import describe, machine
from lib.procfs import loadavg, open_fds, process_tree, rss_kib
from lib.procs import free_port, raise_nofile, wait_ready
from lib.report import args_json, write_report
from lib.stack import stack
from lib.staff import login, make_users

HERE = Path(__file__).resolve().parent
BARE_WS = HERE / "bare_ws.py"
TARGET_KIB = 50.0
TARGET_CONNECTIONS = 10000


@dataclass
class Result:
    target: str
    requested: int
    connected: int
    failed: int
    connect_s: float
    rss_before: int
    rss_connected: int
    rss_max: int
    fds: int
    closed_by_server: dict[str, int]
    heartbeats_min: int
    heartbeats_expected: int
    short_of_heartbeats: int
    still_open: int
    idle_cpu: str
    load_before: str

    @property
    def kib_per_conn(self) -> float:
        return (self.rss_max - self.rss_before) / max(1, self.connected)

    @property
    def ok(self) -> bool:
        return (self.connected == self.requested and not self.closed_by_server
                and self.still_open == self.connected and self.short_of_heartbeats == 0)


def measure(target: str, pid: int, url: str, headers: list[dict[str, str]],
            args: argparse.Namespace) -> Result:
    load_before = loadavg()
    warm = Consoles(ConsoleSpec(url=url, headers=headers, count=20,
                                compression=not args.no_compression))
    warm.wait_ready()
    warm.finish()
    time.sleep(1.0)
    before = rss_kib(pid)
    t0 = time.monotonic()
    group = ConsoleGroup(ConsoleSpec(url=url, headers=headers, count=args.connections,
                                     compression=not args.no_compression,
                                     connect_concurrency=args.connect_concurrency),
                         args.client_procs)
    try:
        connected, failed, _ = group.wait_ready(timeout=900)
        connect_s = time.monotonic() - t0
        print(f"  {target}: {connected} of {args.connections} consoles connected in "
              f"{connect_s:.1f} s ({failed} failed); RSS {before / 1024:.1f} -> "
              f"{rss_kib(pid) / 1024:.1f} MiB; holding {args.hold:g} s")
        time.sleep(1.0)
        rss_connected = rss_kib(pid)
        peak = rss_connected
        meter = CpuMeter({"server": process_tree(pid)})
        spy = None
        if args.profile:
            out = Path(f"{args.profile}-{target}.txt")
            out.parent.mkdir(parents=True, exist_ok=True)
            spy = profiles.record(pid, out, max(1, int(args.hold) - 2), subprocesses=False,
                                  stderr=subprocess.DEVNULL)
            print(f"  {target}: py-spy while holding -> {out}")
        meter.start()
        end = time.monotonic() + args.hold
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            peak = max(peak, rss_kib(pid))
        meter.stop()
        if spy is not None:
            spy.wait(60)
        fds = open_fds(pid)
        merged = group.finish(timeout=300)
    finally:
        group.kill()
    # Heartbeats of the consoles that connected (those that got any frame: hello first).
    heartbeats = [h for h, f in zip(merged["heartbeats"], merged["frames"], strict=True) if f]
    expected = max(0, int(args.hold // args.heartbeat) - 1)
    closed = merged["closed_by_server"]
    res = Result(
        target=target, requested=args.connections, connected=connected, failed=failed,
        connect_s=connect_s, rss_before=before, rss_connected=rss_connected, rss_max=peak,
        fds=fds, closed_by_server=closed, heartbeats_min=min(heartbeats, default=0),
        heartbeats_expected=expected,
        short_of_heartbeats=sum(1 for h in heartbeats if h < expected),
        still_open=merged["still_open"], idle_cpu=meter.line(),
        load_before=load_before)
    print(f"  {target}: RSS before {before / 1024:.1f} MiB, connected "
          f"{rss_connected / 1024:.1f} MiB, max while holding {peak / 1024:.1f} MiB -> "
          f"{res.kib_per_conn:.1f} KiB per connection; {fds} fds open")
    print(f"  {target}: still open at the end {res.still_open}, closed by the server "
          f"{closed or 0}; heartbeats per console min {res.heartbeats_min} (expected >= "
          f"{expected}), {res.short_of_heartbeats} consoles short; idle server CPU "
          f"{res.idle_cpu}")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=TARGET_CONNECTIONS)
    p.add_argument("--heartbeat", type=float, default=5.0,
                   help="CONNECTOR_WS_HEARTBEAT_SECONDS (and the bare app's ticker)")
    p.add_argument("--hold", type=float, default=30.0, help="seconds to hold them idle")
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--connect-concurrency", type=int, default=50, help="per client process")
    p.add_argument("--sessions", type=int, default=20, help="agent sessions (connector)")
    p.add_argument("--no-compression", action="store_true",
                   help="consoles do not offer permessage-deflate")
    p.add_argument("--only", choices=("bare", "connector"))
    p.add_argument("--profile", metavar="PREFIX",
                   help="py-spy (non-blocking) on each server while it holds the consoles: "
                        "PREFIX-bare.txt, PREFIX-connector.txt (collapsed stacks)")
    p.add_argument("--source", type=Path, default=HERE.parent)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--smoke", action="store_true", help="100 connections, 1 s heartbeats, 3 s")
    args = p.parse_args(argv)
    if args.smoke:
        args.connections, args.heartbeat, args.hold = 100, 1.0, 3.0
        args.client_procs, args.sessions = 1, 2
    limit = raise_nofile(max(65536, args.connections * 2 + 1000))
    if limit < args.connections + 200:
        print(f"error: fd limit {limit} is too low for {args.connections} connections",
              file=sys.stderr)
        return 2
    results: list[Result] = []
    with stack(source=args.source, keep=args.keep,
               extra_env={"CONNECTOR_WS_HEARTBEAT_SECONDS": str(args.heartbeat)}) as st:
        print(f"machine: {machine()}; fd limit {limit}")
        print(f"connector source: {describe(st.source)}")
        print(f"workload: {args.connections} idle consoles from {args.client_procs} client "
              f"process(es), heartbeat every {args.heartbeat:g} s, held {args.hold:g} s, "
              f"permessage-deflate {'off' if args.no_compression else 'offered'}; "
              f"load {loadavg()}")
        if args.only != "connector":
            port = free_port()
            bare = st.spawn("bare_ws", [sys.executable, str(BARE_WS), "--port", str(port),
                                        "--heartbeat", str(args.heartbeat)], port)
            wait_ready(bare)
            results.append(measure("bare", bare.proc.pid, f"ws://127.0.0.1:{port}/ws",
                                   [{"Origin": f"http://127.0.0.1:{port}"}], args))
            st.stop(bare)
        if args.only != "bare":
            conn = st.start_connector()
            names = make_users(st, "agent", "agent", args.sessions)
            headers = [login(st, n).ws_headers(st.base) for n in names]
            results.append(measure("connector", conn.proc.pid,
                                   f"ws://127.0.0.1:{st.port}/ws", headers, args))
            st.check_alive()
    print()
    for r in results:
        print(f"{r.target:9s} {r.connected:6d} consoles, {r.kib_per_conn:7.1f} KiB each "
              f"(RSS {r.rss_before / 1024:.1f} -> {r.rss_max / 1024:.1f} MiB), connected in "
              f"{r.connect_s:.1f} s; checks " + ("ok" if r.ok else "FAILED"))
    by = {r.target: r for r in results}
    if len(by) == 2:
        print(f"ratio connector/bare: {by['connector'].kib_per_conn / by['bare'].kib_per_conn:.1f}x"
              " memory per connection")
    if "connector" in by:
        c = by["connector"]
        met = c.connected >= TARGET_CONNECTIONS and c.kib_per_conn <= TARGET_KIB and c.ok
        print(f"connector: {c.connected} consoles at {c.kib_per_conn:.1f} KiB each: target "
              f"{TARGET_CONNECTIONS} at <= {TARGET_KIB:g} KiB "
              + ("met" if met else "MISSED" if c.connected >= TARGET_CONNECTIONS or not args.smoke
                 else "(smoke run: fewer connections)"))
    if args.json:
        write_report(args.json, {
            "machine": machine(), "source": describe(st.source), "load_at_end": loadavg(),
            "args": args_json(args),
            "results": [{**r.__dict__, "kib_per_conn": r.kib_per_conn, "ok": r.ok}
                        for r in results]})
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
