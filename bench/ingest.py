"""Ingest benchmark: durable webhook ingest against the ceiling of a bare handler.

    python3 bench/ingest.py [--duration 15] [--connections 64] [--threads 2] [--rounds 2]
    python3 bench/ingest.py --smoke            # 2 s, 4 connections: a quick check
    python3 bench/ingest.py --profile /tmp/p   # plus two connector runs under py-spy

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

Exit status: 0 when all checks pass, 1 otherwise. Needs `wrk` on PATH
(Debian: `apt-get install wrk`) and, for --profile, `py-spy`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "ingest.lua"
BARE = HERE / "bare_app.py"


@dataclass
class Run:
    target: str
    round: int
    duration_s: float
    requests: int
    sent: int
    need_help: int
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    stored: int | None = None  # connector only: inbound events stored by this run
    open_tickets: int | None = None  # connector only: conversations in handover afterwards
    load_before: str = ""  # /proc/loadavg (1, 5, 15 min) when the run started

    @property
    def ok_responses(self) -> int:
        """2xx/3xx responses (wrk counts status >= 400 as errors.status)."""
        return self.requests - self.errors["status"]

    @property
    def rate(self) -> float:
        return self.ok_responses / self.duration_s

    @property
    def in_flight(self) -> int:
        """Requests written but unanswered when wrk stopped (at most one per connection).

        wrk calls the script's request() once more than it sends: on the first
        thread, before the run, to check the script (script_verify_request).
        """
        return max(0, self.sent - 1 - self.requests)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited with {server.proc.returncode}:\n"
                             + server.log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(server.url("/healthz"), timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{server.name} not ready after {timeout} s")


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "connector.cli", *args], env=env,
                         cwd=env["PYTHONPATH"].split(os.pathsep)[0],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"connector {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def open_tickets(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(
            "SELECT COUNT(*) FROM conversation WHERE open_ticket_id IS NOT NULL").fetchone()[0])
    finally:
        conn.close()


def describe(source: Path) -> str:
    """The checkout benchmarked: path, commit, and whether connector/ has local changes."""
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--",
                                "connector"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{source} (not a git checkout)"
    return f"{source} at {commit}" + (" with local changes in connector/" if dirty else "")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def count_stored(db: Path, integration_id: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM inbound_event WHERE integration_id = ?",
                                (integration_id,)).fetchone()[0])
    finally:
        conn.close()


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


def settled_count(db: Path, integration_id: str, quiet: float = 0.5,
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


def wrk(url: str, *, duration: int, connections: int, threads: int, salt: str, users: int,
        help_percent: float, target: str, rnd: int) -> Run:
    load = loadavg()
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
           "--timeout", "10s", "-s", str(LUA), url, "--", salt, str(users), str(help_percent)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    v = dict(kv.split("=", 1) for kv in line.split()[1:])
    return Run(
        target=target, round=rnd, duration_s=int(v["duration_us"]) / 1e6,
        requests=int(v["requests"]), sent=int(v["sent"]), need_help=int(v["need_help"]),
        errors={k[4:]: int(v[k]) for k in v if k.startswith("err_")},
        p50_ms=int(v["p50_us"]) / 1000, p90_ms=int(v["p90_us"]) / 1000,
        p99_ms=int(v["p99_us"]) / 1000, max_ms=int(v["max_us"]) / 1000, load_before=load,
    )


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401
        http = "httptools"
    except ImportError:
        http = "h11"
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    return (f"{os.cpu_count()} CPU ({model}), {mem} RAM, Python {sys.version.split()[0]}, "
            f"SQLite {sqlite3.sqlite_version}, uvicorn loop={loop} http={http}")


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
    p.add_argument("--smoke", action="store_true", help="2 s, 4 connections, 1 round")
    p.add_argument("--profile", metavar="PREFIX",
                   help="after the rounds, two more connector runs under py-spy "
                        "(not counted): PREFIX.txt (collapsed stacks, see bench/stacks.py) "
                        "and PREFIX.svg (flame graph)")
    p.add_argument("--source", type=Path, default=ROOT,
                   help="checkout whose `connector` package is benchmarked (default: this one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
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

    source = args.source.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    db = tmp / "connector.db"
    port, bare_port = free_port(), free_port()
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
           "CONNECTOR_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
           "CONNECTOR_LOG_LEVEL": "warning",
           "CONNECTOR_ADMIN_PASSWORD": secrets.token_urlsafe(16),
           "CONNECTOR_HOST": "127.0.0.1", "CONNECTOR_PORT": str(port),
           "CONNECTOR_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    servers: list[Server] = []
    runs: list[Run] = []
    try:
        cli(env, "migrate")
        integ = json.loads(cli(env, "integration", "add", "--name", "bench",
                               "--channel-url", "http://127.0.0.1:9/bench", "--json"))
        hook_path = integ["smartly_webhook_url"].split(f":{port}", 1)[1]

        def spawn(name: str, cmd: list[str], p: int) -> Server:
            log = tmp / f"{name}.log"
            proc = subprocess.Popen(cmd, env=env, cwd=source, stdout=log.open("wb"),
                                    stderr=subprocess.STDOUT, start_new_session=True)
            server = Server(name, proc, p, log)
            servers.append(server)
            return server

        conn = spawn("connector", [sys.executable, "-m", "connector.cli", "serve"], port)
        bare = spawn("bare", [sys.executable, str(BARE), "--port", str(bare_port)], bare_port)
        wait_ready(conn)
        wait_ready(bare)
        print(f"machine: {machine()}")
        print(f"connector source: {describe(source)}")
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
                total = settled_count(db, integ["id"])
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
            ok = profile(conn, args, hook_path, run_id, drive, runs) and ok
        ok = verify_totals(db, integ["id"], runs) and ok
        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": machine(), "args": {k: str(v) if isinstance(v, Path) else v
                                               for k, v in vars(args).items()},
                "runs": [{**r.__dict__, "rate": r.rate} for r in runs]}, indent=2))
        return 0 if ok else 1
    finally:
        for server in servers:
            stop(server)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


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


def verify_totals(db: Path, integration_id: str, runs: list[Run]) -> bool:
    total = count_stored(db, integration_id)
    conn_runs = [r for r in runs if r.target == "connector"]
    # Each connector run is followed by one probe event (see `probe`).
    expected = sum(r.stored or 0 for r in conn_runs) + len(conn_runs)
    print(f"total inbound events stored: {total} (runs + probes: {expected})")
    return total == expected


def profile(conn: Server, args: argparse.Namespace, hook_path: str, run_id: str, drive,
            runs: list[Run]) -> bool:
    """Two more connector runs, each under one py-spy: collapsed stacks, then a flame graph."""
    prefix = Path(args.profile)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    ok = True
    for n, (fmt, suffix) in enumerate((("raw", ".txt"), ("flamegraph", ".svg")), start=1):
        out = prefix.with_suffix(suffix)
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(conn.proc.pid), "--rate", "250", "--nonblocking",
             "--duration", str(args.duration + 1), "--format", fmt, "--threads",
             "--subprocesses", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # let py-spy attach
        r = drive(conn, "connector", 100 + n, args.duration)
        r.round = -n
        runs.append(r)
        _, err = spy.communicate(timeout=120)
        if spy.returncode != 0:
            print(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        print(f"  profiled  connector {r.rate:9.0f} req/s under py-spy (not counted) -> {out}")
        ok = check_run(r) and ok
    return ok

if __name__ == "__main__":
    sys.exit(main())
