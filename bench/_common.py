"""Shared helpers for bench/latency.py, bench/delivery.py and bench/connections.py.

Process plumbing (free ports, readiness, stopping, the `connector` CLI, the
machine line, the load average) is reused from `bench/ingest.py`. New here:

* `Stack`: a temporary directory with a fresh SQLite database, one integration
  and one `connector serve` process, plus any helper processes (bare apps,
  fake channel); everything stopped and removed on exit;
* `admin_client` / `make_users` / `login`: staff accounts and sessions through
  the admin API (one argon2 hash per user, done by the server);
* `turn_body`: a Smartly `message_received` body of the shape bench/ingest.lua
  sends (every field of the documented example);
* `RawPool`: keep-alive HTTP/1.1 connections over asyncio streams with
  pre-encoded requests, so the load generator costs a few tens of µs per
  request (httpx costs ten times that);
* `paced_load`: an open-loop token bucket sending N requests at a steady rate
  through a `RawPool`, recording the send time of each (CLOCK_MONOTONIC, which
  is shared by all processes of the machine, so a time taken here can be
  compared with one taken in another process);
* `consoles_main`: a child process holding WebSocket consoles (the
  `websockets` library) that records, per console, the arrival time of every
  frame carrying a benchmark token (a message may be one frame or an array of
  frames: every token in it is counted);
* `/proc` readers: RSS, CPU seconds, open fds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ingest import (  # noqa: E402  (bench/ingest.py: reused as is)
    Server,
    cli,
    describe,
    free_port,
    loadavg,
    machine,
    stop,
    wait_ready,
)

__all__ = ["Server", "cli", "describe", "free_port", "loadavg", "machine", "stop", "wait_ready"]

PASSWORD = "bench-password-1"  # every staff account the benchmarks make


# --- processes and /proc -------------------------------------------------------------------

def raise_nofile(want: int = 65536) -> int:
    """Raise this process's soft fd limit as far as the hard limit allows; returns it.

    Children started afterwards inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (the connector's fork server and ingest writer)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def sched_seconds(pid: int) -> tuple[float, float]:
    """(on CPU, runnable but waiting for a CPU) in seconds, summed over the threads.

    From /proc/PID/task/*/schedstat. The wait is the time the process had work
    to do but the machine gave the CPU to someone else: on a shared machine
    it tells "we were slow" from "we were not scheduled".
    """
    run = wait = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                r, w, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                run += int(r)
                wait += int(w)
    return run / 1e9, wait / 1e9


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class CpuMeter:
    """CPU use of some processes between `start()` and `stop()`, as % of one core.

    A name stands for one process, or for several given as a list: pass a
    server's `process_tree` (the connector's ingest writer runs in a child
    process, and its CPU is the server's). Also the time each was runnable but waiting for a CPU
    (`sched_seconds`): CPU + wait near 100% means the process always had work,
    i.e. it was CPU-bound, on whatever share of the machine it got.
    """

    def __init__(self, pids: dict[str, int | list[int]]) -> None:
        self.pids = pids
        self.trees = {k: p if isinstance(p, list) else [p] for k, p in pids.items()}
        self._t0 = 0.0
        self._c0: dict[str, float] = {}
        self._w0: dict[str, float] = {}
        self.seconds = 0.0
        self.cpu_s: dict[str, float] = {}
        self.percent: dict[str, float] = {}
        self.wait_percent: dict[str, float] = {}

    def _cpu(self, name: str) -> float:
        return sum(_or_zero(cpu_seconds, p) for p in self.trees[name])

    def _wait(self, name: str) -> float:
        return sum(sched_seconds(p)[1] for p in self.trees[name])

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._c0 = {k: self._cpu(k) for k in self.pids}
        self._w0 = {k: self._wait(k) for k in self.pids}

    def stop(self) -> dict[str, float]:
        dt = self.seconds = time.monotonic() - self._t0
        self.cpu_s = {k: self._cpu(k) - self._c0[k] for k in self.pids}
        self.percent = {k: 100 * v / dt for k, v in self.cpu_s.items()}
        self.wait_percent = {k: 100 * (self._wait(k) - self._w0[k]) / dt for k in self.pids}
        return self.percent

    def line(self) -> str:
        def name(k: str) -> str:
            n = len(self.trees.get(k, ()))
            return f"{k} ({n} processes)" if n > 1 else k
        return ", ".join(f"{name(k)} {v:.0f}% (+{self.wait_percent.get(k, 0):.0f}% waiting for a "
                         "CPU)" for k, v in self.percent.items())


def _or_zero(f: Callable[[int], float], pid: int) -> float:
    try:
        return f(pid)
    except OSError:  # a process that ended since start()
        return 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def summary(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"n": len(v), "p50": percentile(v, 50), "p90": percentile(v, 90),
            "p99": percentile(v, 99), "max": v[-1] if v else float("nan")}


def fmt_ms(s: dict[str, float]) -> str:
    return (f"p50 {s['p50']:7.2f} ms   p99 {s['p99']:7.2f} ms   max {s['max']:8.2f} ms"
            f"   (n={s['n']:.0f})")


# --- the connector under test --------------------------------------------------------------

@dataclass
class Stack:
    """A temporary database, one integration, and the processes of one benchmark run."""

    source: Path = ROOT
    channel_url: str = "http://127.0.0.1:9/bench"
    extra_env: dict[str, str] = field(default_factory=dict)
    keep: bool = False
    tmp: Path = field(init=False)
    port: int = field(init=False)
    env: dict[str, str] = field(init=False)
    servers: list[Server] = field(default_factory=list)
    connector: Server | None = None
    integration: dict[str, Any] = field(default_factory=dict)
    hook_path: str = ""

    def __post_init__(self) -> None:
        self.source = self.source.resolve()
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(self.source),
                                                        os.environ.get("PYTHONPATH")])),
            "CONNECTOR_DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp / 'connector.db'}",
            "CONNECTOR_LOG_LEVEL": "warning",
            "CONNECTOR_ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "CONNECTOR_HOST": "127.0.0.1", "CONNECTOR_PORT": str(self.port),
            "CONNECTOR_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            **self.extra_env,
        }

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.tmp / "connector.db"

    def spawn(self, name: str, cmd: list[str], port: int) -> Server:
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen(cmd, env=self.env, cwd=self.source, stdout=log.open("wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        server = Server(name, proc, port, log)
        self.servers.append(server)
        return server

    def start_connector(self) -> Server:
        cli(self.env, "migrate")
        self.integration = json.loads(cli(self.env, "integration", "add", "--name", "bench",
                                          "--channel-url", self.channel_url, "--json"))
        self.hook_path = self.integration["smartly_webhook_url"].split(f":{self.port}", 1)[1]
        self.connector = self.spawn("connector", [sys.executable, "-m", "connector.cli",
                                                  "serve"], self.port)
        wait_ready(self.connector)
        return self.connector

    def check_alive(self) -> None:
        for s in self.servers:
            if s.proc.poll() is not None:
                raise SystemExit(f"{s.name} died ({s.proc.returncode}):\n"
                                 + s.log.read_text(errors="replace")[-3000:])

    def close(self) -> None:
        for s in reversed(self.servers):
            stop(s)
        if self.keep:
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def stack(**kwargs: Any) -> Iterator[Stack]:
    s = Stack(**kwargs)
    try:
        yield s
    finally:
        s.close()


def admin_client(st: Stack) -> Any:
    import httpx

    client = httpx.Client(base_url=st.base, headers={"Origin": st.base}, timeout=60)
    r = client.post("/api/login", json={"username": "admin",
                                        "password": st.env["CONNECTOR_ADMIN_PASSWORD"]})
    r.raise_for_status()
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def make_users(st: Stack, prefix: str, role: str, count: int) -> list[str]:
    """Create `count` staff accounts through the admin API; returns their names."""
    names = [f"{prefix}{i}" for i in range(count)]
    admin = admin_client(st)
    try:
        for name in names:
            r = admin.post("/api/users", json={"username": name, "password": PASSWORD,
                                               "role": role})
            if r.status_code != 201:
                raise SystemExit(f"creating user {name}: {r.status_code} {r.text}")
    finally:
        admin.close()
    return names


@dataclass(frozen=True)
class Session:
    username: str
    cookie: str
    csrf: str

    def ws_headers(self, base: str) -> dict[str, str]:
        return {"Cookie": f"connector_session={self.cookie}", "Origin": base}


def login(st: Stack, username: str) -> Session:
    import httpx

    r = httpx.post(f"{st.base}/api/login", json={"username": username, "password": PASSWORD},
                   headers={"Origin": st.base}, timeout=60)
    if r.status_code != 200:
        raise SystemExit(f"login {username}: {r.status_code} {r.text}")
    return Session(username, r.cookies["connector_session"], r.json()["csrf_token"])


# --- webhook bodies ------------------------------------------------------------------------

def turn_body(user: str, text: str, *, need_help: bool = False, answer: str | None = None,
              muted: bool | None = None, ref: str = "") -> bytes:
    """A Smartly `message_received` turn with every field of the documented example.

    Same shape as bench/ingest.lua. `answer=None` (the default) is a turn of a
    conversation in handover: the bot is muted and says nothing, so the turn
    makes exactly one transcript message (the user's input) and, while the
    conversation has an open ticket, exactly one `message.created` event.
    """
    ref = ref or secrets.token_hex(6)
    payload = {
        "input": text, "corrected_input": text,
        "intent": "HelpIntent" if need_help else "OrderStatusIntent",
        "intent_slug": "sysHelpIntentfrfr" if need_help else "orderStatusfrfr",
        "intent_id": "123abc", "confidence": 1 if need_help else 0.87,
        "confidence_threshold": 0.2, "custom_entities": {}, "system_entities": {},
        "alternatives": [], "understood": True, "understood_nlu": True,
        "never_trained": False, "state_id": "123abc",
        "state_name": "un conseiller va vous contacter" if need_help else "suivi de commande",
        "answer": answer, "reprompt": None, "end_session": False, "user_id": user,
        "platform": "webchat", "muted": need_help if muted is None else muted,
        "need_help": need_help, "handover_category_name": "", "payload": {},
        "no_reply_prompt": "", "probabilistic_nlu_processing_time": 0.093,
        "rule_based_nlu_processing_time": 0, "dialog_management_processing_time": 0.005,
        "rich_text": [], "show_answer_survey": False, "show_conversation_survey": False,
        "webchat_input_place_holder": "", "webchat_hidden_input": None,
        "has_webhook_integration": True, "lang": "fr-fr", "skill_id": "123abc",
        "input_type": "text", "client_id": user, "master_bot": False,
        "client_session_id": f"sess-{ref}", "first_client_session_id": None,
        "nlu_model": {"name": "SNP 1.06", "version": "1.06 RC3"},
        "number_of_nounderstood": 0, "is_smartly_integration": True, "is_simulator": False,
        "event_name": "NEW_INPUT", "total_processing_time": 0.269,
    }
    return json.dumps({"event": "message_received", "payload": payload},
                      ensure_ascii=False).encode()


def token_text(run: str, seq: int) -> str:
    """A user's input carrying the benchmark token `<run>x<seq>y` (found with `token_re`)."""
    return f"Bonjour, ma commande {run}x{seq}y n'est pas arrivée"


def token_re(run: str) -> re.Pattern[str]:
    return re.compile(re.escape(run) + r"x(\d+)y")


# --- HTTP load -----------------------------------------------------------------------------

def http_request(method: str, path: str, port: int, body: bytes,
                 headers: dict[str, str] | None = None) -> bytes:
    """One pre-encoded HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RawConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        body = await self.reader.readexactly(length) if length else b""
        return status, body


class RawPool:
    """`size` keep-alive connections to 127.0.0.1:port."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.conns: list[RawConn] = []

    async def open(self) -> RawPool:
        for _ in range(self.size):
            r, w = await asyncio.open_connection("127.0.0.1", self.port)
            self.conns.append(RawConn(r, w))
        return self

    async def close(self) -> None:
        for c in self.conns:
            c.writer.close()
            with contextlib.suppress(Exception):
                await c.writer.wait_closed()
        self.conns = []

    async def run_all(self, requests: list[bytes]) -> list[tuple[int, bytes]]:
        """Send every request, as fast as the pool goes (setup work, not measured)."""
        results: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
        it = iter(enumerate(requests))

        async def worker(conn: RawConn) -> None:
            for i, req in it:
                results[i] = await conn.roundtrip(req)

        await asyncio.gather(*(worker(c) for c in self.conns))
        return results


@dataclass
class LoadResult:
    rate: float
    sent: int
    send_ns: array  # CLOCK_MONOTONIC ns just before each request was written, by seq
    done_ns: array  # CLOCK_MONOTONIC ns when its response had been read
    lag_ms: dict[str, float]  # send time minus scheduled time
    latency_ms: dict[str, float]  # request to response
    statuses: dict[int, int]
    achieved: float  # requests per second actually sent over the run
    answered_by_end: int  # responses in by the time the schedule ended

    def line(self) -> str:
        bad = {k: v for k, v in self.statuses.items() if not 200 <= k < 300}
        return (f"load: {self.sent} requests, target {self.rate:.0f}/s, sent at "
                f"{self.achieved:.1f}/s; send lag behind schedule p50 "
                f"{self.lag_ms['p50']:.2f} ms, p99 {self.lag_ms['p99']:.2f} ms, max "
                f"{self.lag_ms['max']:.1f} ms; response p50 {self.latency_ms['p50']:.1f} ms, "
                f"p99 {self.latency_ms['p99']:.1f} ms; non-2xx {sum(bad.values())}"
                + (f" {bad}" if bad else ""))

    def keeps_up(self, tolerance: float = 0.97) -> bool:
        return self.achieved >= tolerance * self.rate and self.lag_ms["p99"] < 50


async def paced_load(pool: RawPool, requests: Sequence[bytes], rate: float,
                     on_sent: Callable[[int, int], None] | None = None) -> LoadResult:
    """Send `requests[i]` at t0 + i/rate (open loop), each on the next free connection.

    A token bucket with no burst: the pacer releases request i once its time
    has come; a free connection takes it and writes it at once. If every
    connection is waiting for an answer, releases queue up and the send lag
    grows: that is reported (the achieved rate and the lag), not hidden.
    """
    n = len(requests)
    send_ns = array("q", bytes(8 * n))
    done_ns = array("q", bytes(8 * n))
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    t0 = time.monotonic_ns() + 20_000_000
    period = 1e9 / rate

    async def worker(conn: RawConn) -> None:
        while True:
            i = await queue.get()
            if i < 0:
                return
            t = time.monotonic_ns()
            send_ns[i] = t
            if on_sent is not None:
                on_sent(i, t)
            try:
                status, _ = await conn.roundtrip(requests[i])
            except (OSError, asyncio.IncompleteReadError):
                status = 599
            done_ns[i] = time.monotonic_ns()
            statuses[status] = statuses.get(status, 0) + 1

    workers = [asyncio.create_task(worker(c)) for c in pool.conns]
    released = 0
    while released < n:
        now = time.monotonic_ns()
        due = min(n, int((now - t0) / period) + 1) if now >= t0 else 0
        while released < due:
            queue.put_nowait(released)
            released += 1
        # Sleep until the next release is due (uvloop's timer resolution is 1 ms).
        await asyncio.sleep(max(0.0, (t0 + released * period - time.monotonic_ns()) / 1e9))
    end_schedule = time.monotonic_ns()
    for _ in workers:
        queue.put_nowait(-1)
    await asyncio.gather(*workers)
    answered_by_end = sum(1 for t in done_ns if 0 < t <= end_schedule)
    lags = [(send_ns[i] - (t0 + i * period)) / 1e6 for i in range(n)]
    lat = [(done_ns[i] - send_ns[i]) / 1e6 for i in range(n)]
    span = (send_ns[n - 1] - send_ns[0]) / 1e9 if n > 1 else 1.0
    return LoadResult(rate=rate, sent=n, send_ns=send_ns, done_ns=done_ns, lag_ms=summary(lags),
                      latency_ms=summary(lat), statuses=statuses,
                      achieved=(n - 1) / span if span > 0 else float("nan"),
                      answered_by_end=answered_by_end)


CLIENT_SCHED_HELP = (
    "scheduling policy of the client processes (consoles, load generator): 'batch' "
    "(default) keeps them from preempting the server each time it writes to them, as "
    "clients on other machines never do; 'normal' is the plain default policy")


def set_client_policy(policy: str) -> None:
    """Put the calling thread (and what it forks later) in `policy`: "batch" or "normal".

    Here the clients share 2 vCPUs with the server they measure. Under the
    default policy each write the server makes to a console or an HTTP client
    wakes that process, and the kernel may switch to it at once, in the middle of
    the server's fan-out or request; in production the clients are browsers and
    bot platforms on other machines and never do that. SCHED_BATCH (no privilege
    needed) turns off that wake-up preemption for the clients only; they still
    take their share of CPU. It applies to every target of a run alike.
    """
    if policy == "batch":
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    elif policy == "normal":
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    else:
        raise ValueError(f"unknown scheduling policy {policy!r}")


@contextlib.contextmanager
def client_policy(policy: str) -> Iterator[None]:
    """`set_client_policy` for the calling thread while the block runs (servers this
    process starts afterwards must not inherit it)."""
    set_client_policy(policy)
    try:
        yield
    finally:
        set_client_policy("normal")


def use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# --- WebSocket consoles in a child process -------------------------------------------------

@dataclass
class ConsoleSpec:
    url: str
    headers: list[dict[str, str]]  # per console, round robin
    count: int
    token: str = ""  # run token: frames matching token_re(token) are recorded
    compression: bool = True  # permessage-deflate, as browsers offer it
    sched: str = "batch"  # see `client_policy`
    connect_concurrency: int = 50


def consoles_main(conn: Any, spec: ConsoleSpec) -> None:
    """Child process: open `spec.count` consoles, record matches until told to stop.

    Protocol on `conn` (a multiprocessing Pipe end): child sends
    ("ready", connected, failed, seconds); parent sends "stop"; child sends
    ("done", result dict).
    """
    raise_nofile()
    set_client_policy(spec.sched)
    use_uvloop()
    asyncio.run(_consoles(conn, spec))


async def _consoles(pipe: Any, spec: ConsoleSpec) -> None:
    import websockets

    rx = token_re(spec.token) if spec.token else None
    seqs = [array("q") for _ in range(spec.count)]
    times = [array("q") for _ in range(spec.count)]
    heartbeats = [0] * spec.count
    frames = [0] * spec.count
    closes: dict[str, int] = {}
    sockets: list[Any] = [None] * spec.count
    gate = asyncio.Semaphore(spec.connect_concurrency)
    failed = 0

    async def reader(i: int, ws: Any) -> None:
        s, t = seqs[i], times[i]
        try:
            async for msg in ws:
                now = time.monotonic_ns()
                frames[i] += 1
                if rx is not None:
                    found = False
                    # One message may carry several events: a JSON array of frames
                    # (the connector, bare_ws.py --coalesce). Heartbeats come alone.
                    for m in rx.finditer(msg):
                        s.append(int(m.group(1)))
                        t.append(now)
                        found = True
                    if found:
                        continue
                if msg.startswith('{"type":"heartbeat"'):
                    heartbeats[i] += 1
        except websockets.ConnectionClosed:
            pass
        code = f"{ws.close_code}" if ws.close_code is not None else "none"
        if not stopping:
            closes[code] = closes.get(code, 0) + 1

    tasks: list[asyncio.Task[None]] = []
    stopping = False

    async def connect(i: int) -> None:
        nonlocal failed
        async with gate:
            try:
                ws = await websockets.connect(
                    spec.url, additional_headers=spec.headers[i % len(spec.headers)],
                    compression="deflate" if spec.compression else None,
                    ping_interval=None, max_size=2**20, open_timeout=120,
                    close_timeout=5)
            except Exception:
                failed += 1
                return
            sockets[i] = ws
            tasks.append(asyncio.create_task(reader(i, ws)))

    t0 = time.monotonic()
    await asyncio.gather(*(connect(i) for i in range(spec.count)))
    connected = sum(1 for s in sockets if s is not None)
    pipe.send(("ready", connected, failed, time.monotonic() - t0))
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, pipe.recv)) != "stop":
        pipe.send(("count", sum(len(s) for s in seqs), sum(frames), sum(heartbeats),
                   sum(1 for s in sockets if s is not None and s.close_code is None)))
    # Counted before closing: sockets the server closed during the measurement.
    still_open = sum(1 for s in sockets if s is not None and s.close_code is None)
    stopping = True
    await asyncio.gather(*(s.close() for s in sockets if s is not None),
                         return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("done", {
        "seqs": [s.tobytes() for s in seqs], "times": [t.tobytes() for t in times],
        "heartbeats": heartbeats, "frames": frames, "closed_by_server": closes,
        "connected": connected, "failed": failed, "still_open": still_open,
    }))


class _Draining:
    """`drain` for anything that can `count()` its consoles' frames."""

    def count(self) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def drain(self, expected: int, quiet: float = 3.0, limit: float = 60.0) -> float:
        """Wait until `expected` matched frames are in, or none came for `quiet` s."""
        t0 = last_change = time.monotonic()
        last = -1
        while time.monotonic() - t0 < limit:
            got = self.count()[0]
            if got >= expected:
                break
            if got != last:
                last, last_change = got, time.monotonic()
            elif time.monotonic() - last_change > quiet:
                break
            time.sleep(0.2)
        return time.monotonic() - t0


class Consoles(_Draining):
    """Handle on one consoles child process."""

    def __init__(self, spec: ConsoleSpec) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=consoles_main, args=(child, spec), daemon=True)
        self.proc.start()
        self.spec = spec
        self.ready: tuple[Any, ...] = ()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def wait_ready(self, timeout: float = 600) -> tuple[int, int, float]:
        if not self.pipe.poll(timeout):
            raise SystemExit("consoles process did not get ready")
        msg = self.pipe.recv()
        self.ready = msg
        return msg[1], msg[2], msg[3]

    def count(self) -> tuple[int, int, int, int]:
        """(matched frames, all frames, heartbeats, sockets open) so far, all consoles."""
        self.pipe.send("count")
        if not self.pipe.poll(60):
            raise SystemExit("consoles process does not answer")
        return self.pipe.recv()[1:]

    def finish(self, timeout: float = 120) -> dict[str, Any]:
        self.pipe.send("stop")
        if not self.pipe.poll(timeout):
            raise SystemExit("consoles process did not report")
        _, result = self.pipe.recv()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
        for key in ("seqs", "times"):
            result[key] = [array("q", b) for b in result[key]]
        return result

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


class ConsoleGroup(_Draining):
    """`count` consoles spread over `procs` child processes, used as one."""

    def __init__(self, spec: ConsoleSpec, procs: int = 1) -> None:
        procs = max(1, min(procs, spec.count))
        sizes = [spec.count // procs] * procs
        sizes[0] += spec.count - sum(sizes)
        self.members = [Consoles(ConsoleSpec(
            url=spec.url, headers=spec.headers, count=n, token=spec.token,
            compression=spec.compression, connect_concurrency=spec.connect_concurrency,
            sched=spec.sched))
            for n in sizes]

    @property
    def pids(self) -> list[int]:
        return [m.pid for m in self.members]

    def wait_ready(self, timeout: float = 600) -> tuple[int, int, float]:
        ready = [m.wait_ready(timeout) for m in self.members]
        return sum(r[0] for r in ready), sum(r[1] for r in ready), max(r[2] for r in ready)

    def count(self) -> tuple[int, int, int, int]:
        counts = [m.count() for m in self.members]
        return tuple(sum(c[i] for c in counts) for i in range(4))  # type: ignore[return-value]

    def finish(self, timeout: float = 120) -> dict[str, Any]:
        """Results of all members, merged (lists concatenated, counts summed)."""
        parts = [m.finish(timeout) for m in self.members]
        merged: dict[str, Any] = {"closed_by_server": {}}
        for key in ("seqs", "times", "heartbeats", "frames"):
            merged[key] = [x for p in parts for x in p[key]]
        for key in ("connected", "failed", "still_open"):
            merged[key] = sum(p[key] for p in parts)
        for p in parts:
            for code, n in p["closed_by_server"].items():
                merged["closed_by_server"][code] = merged["closed_by_server"].get(code, 0) + n
        return merged

    def kill(self) -> None:
        for m in self.members:
            m.kill()


# --- where a server's threads wait (non-intrusive: /proc, no ptrace stop) -------------------

_SYSCALLS = {"230": "sleep (SQLite busy handler)", "35": "sleep (SQLite busy handler)",
             "74": "fsync", "75": "fsync", "202": "futex (idle or GIL)",
             "232": "epoll (idle)", "281": "epoll (idle)", "7": "poll (idle)",
             "running": "busy"}


def _thread_group(name: str) -> str:
    if name == "MainThread":
        return "event loop thread"
    if name.startswith("ingest-writer"):
        return "ingest writer thread"
    if "_connection_worker_thread" in name:
        return "aiosqlite threads"
    if name.startswith("AnyIO"):
        return "thread pool (argon2 etc.)"
    return "other threads" if name else "unnamed threads (gone, or no Python frames)"


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name, from one `py-spy dump` (a brief stop)."""
    if shutil.which("py-spy") is None:
        return {}
    out = subprocess.run(["py-spy", "dump", "--pid", str(pid), "--json"],
                         capture_output=True, text=True, check=False)
    try:
        return {int(t["os_thread_id"]): t.get("thread_name") or ""
                for t in json.loads(out.stdout) if t.get("os_thread_id")}
    except (ValueError, TypeError, KeyError):
        return {}


class ThreadStates:
    """Samples what every thread of `pid` is doing, from /proc/PID/task/*/syscall.

    A background thread reads, `hz` times a second, each thread's current system
    call (or "running"). At the end the threads are named with one
    `py-spy dump` (Python 3.11 does not name OS threads) and grouped. In the
    SQLite threads a `clock_nanosleep` is SQLite's busy handler sleeping until
    the write lock is free (`usleep` in sqliteDefaultBusyCallback): time lost
    to lock waits; "busy" is a thread in user space (running Python or C code,
    on a CPU or waiting for one); a futex is an idle pool thread or a wait for
    the GIL. Unlike `py-spy record`, sampling never stops the process. It runs
    in the load generator's process: at 200 Hz it took ~14% of a core there
    (and the pacer's GIL), so 25 Hz, which still gives 250 samples per thread
    in a 10 s round.
    """

    def __init__(self, pid: int, hz: float = 25) -> None:
        import threading

        self.pid, self.period = pid, 1 / hz
        self.by_tid: dict[int, dict[str, int]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._names: dict[int, str] = {}

    def start(self) -> ThreadStates:
        self._names = thread_names(self.pid)
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, int]]:
        self._stop.set()
        self._thread.join()
        self._names.update(thread_names(self.pid))
        self.counts = {}
        for tid, per in self.by_tid.items():
            group = self.counts.setdefault(_thread_group(self._names.get(tid, "")), {})
            for state, n in per.items():
                group[state] = group.get(state, 0) + n
        return self.counts

    def _run(self) -> None:
        base = f"/proc/{self.pid}/task"
        while not self._stop.wait(self.period):
            self.samples += 1
            try:
                tids = os.listdir(base)
            except OSError:
                return
            for tid in tids:
                try:
                    call = Path(f"{base}/{tid}/syscall").read_text().split()[0]
                except (OSError, IndexError):
                    continue
                state = _SYSCALLS.get(call, "other system call")
                per = self.by_tid.setdefault(int(tid), {})
                per[state] = per.get(state, 0) + 1

    def lines(self, groups: Sequence[str] = ("event loop thread", "ingest writer thread",
                                             "aiosqlite threads")) -> list[str]:
        out = []
        for g in groups:
            per = self.counts.get(g)
            if not per or not self.samples:
                continue
            # In thread-seconds per second: several aiosqlite threads can sleep at once.
            shown = ", ".join(f"{k} {100 * v / self.samples:.0f}%"
                              for k, v in sorted(per.items(), key=lambda kv: -kv[1])
                              if 100 * v / self.samples >= 0.5)
            out.append(f"{g}: {shown}")
        return out
