"""wrk as the ingest load generator: one run with bench/ingest.lua, read back as a `Run`."""

from __future__ import annotations

import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .procfs import loadavg

#: The wrk script: unique Smartly turns, and one "BENCH ..." line of figures at the end.
LUA = Path(__file__).resolve().parent.parent / "ingest.lua"


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
    threads: int = 1
    connections: int = 1
    client_cpu_s: float = 0.0  # wrk's CPU time (user + system, all its threads)
    server_cpu_s: float | None = None  # the target's CPU time (its process tree), when measured
    mix: str = ""  # the workload (bench/ingest.py's mixes)
    stored_level: int | None = None  # connector only: events stored before the mixes ran
    #: SQLite connector only: bytes and write requests its database's disk completed during
    #: the run (the whole device: the WAL, the checkpoints, and anything else on it).
    disk_bytes: int | None = None
    disk_writes: int | None = None

    @property
    def ok_responses(self) -> int:
        """2xx/3xx responses (wrk counts status >= 400 as errors.status)."""
        return self.requests - self.errors["status"]

    @property
    def rate(self) -> float:
        return self.ok_responses / self.duration_s

    @property
    def client_busy(self) -> float:
        """wrk's CPU as a share of what its threads could use (1.0: every thread always busy)."""
        return self.client_cpu_s / (self.duration_s * self.threads)

    @property
    def client_saturated(self) -> bool:
        """Whether the load generator, not the target, may have set the pace: its threads
        were busy 90% of the time or more."""
        return self.client_busy >= SATURATED

    @property
    def in_flight(self) -> int:
        """Requests written but unanswered when wrk stopped (at most one per connection).

        wrk calls the script's request() once more than it sends: on the first
        thread, before the run, to check the script (script_verify_request).
        """
        return max(0, self.sent - 1 - self.requests)


#: Busy share of wrk's threads from which a run is flagged as limited by its client.
SATURATED = 0.9


def _children_cpu() -> float:
    """CPU time of the children this process has waited for (wrk, once it has ended)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrk(url: str, *, duration: float, connections: int, threads: int, salt: str, users: int,
        help_percent: float, target: str, rnd: int, in_handover: int = 0,
        fresh_escalations: bool = False, mix: str = "") -> Run:
    """`duration` seconds of bench/ingest.lua turns against `url`, with wrk's own CPU time
    (the servers are not waited for while it runs, so the children's CPU is wrk's).
    wrk takes whole seconds: `duration` is rounded (at least 1)."""
    load = loadavg()
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
           "--timeout", "10s", "-s", str(LUA), url, "--", salt, str(users), str(help_percent),
           str(in_handover), "1" if fresh_escalations else "0"]
    cpu0 = _children_cpu()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    client_cpu = _children_cpu() - cpu0
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
        threads=threads, connections=connections, client_cpu_s=client_cpu, mix=mix,
    )
