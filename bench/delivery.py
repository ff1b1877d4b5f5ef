"""Reply delivery latency: an agent's reply POSTed to its arrival at the channel.

    python3 bench/delivery.py [--replies-per-second 20] [--rate 500] [--duration 10] [--rounds 2]
    python3 bench/delivery.py --smoke              # a few seconds, small numbers
    python3 bench/delivery.py --profile /tmp/dlv   # plus one round under py-spy

One run:

1. a fake Chatlayer channel in a child process: a minimal keep-alive HTTP/1.1
   server on asyncio (uvloop) and loopback that answers every POST with 200 and
   records, keyed by the benchmark token in the body, the CLOCK_MONOTONIC time
   at which the whole request had arrived;
2. a temporary SQLite database, one integration whose channel URL is that
   fake channel, one `connector serve` (one worker, log level warning);
3. `--users` end users send a `need_help` turn each (all get an open ticket);
   `--agents` agent accounts sign in and claim `--tickets` of those tickets
   between them;
4. rounds: this process sends, at the same time and each paced by its own
   open-loop token bucket (`lib.load.paced_load`) over keep-alive connections:
   * the ingest load of bench/latency.py: turns from all `--users` (their
     tickets are open) at `--rate` per second, with `--consoles` supervisor
     consoles connected (default 0: the ingest load alone);
   * agent replies, `POST /api/tickets/{id}/messages`, at
     `--replies-per-second`, round robin over the claimed tickets, each
     carrying a token; the time just before the POST is written is kept;
   * the baseline: the same client POSTs a body of the delivery's shape
     directly to the same fake channel at the same rate, interleaved with the
     replies (the floor of one HTTP hop on this machine, under the same load);
   round 0 (`--idle-round`, on by default) does the same without the ingest
   load and is reported on its own;
5. latency = arrival at the channel - POST; p50, p99 and max per round and
   over the loaded rounds, for the replies and the direct POSTs, and their
   ratio; then where each reply's time went, from the server's own
   timestamps in the database (the reply message's `created_at`, taken once
   its transaction holds the write lock, and the first delivery attempt's
   `at - duration_ms`, when the worker started the HTTP call) next to the
   POST's 201; the ingest rate achieved; CPU use; and what the server's
   threads were doing (`lib.threads.ThreadStates`: running, idle, fsync, or
   asleep in SQLite's busy handler waiting for the write lock).

Exit status: 0 when every reply was answered 201 and arrived at the channel
(the latency target is reported, not enforced); 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import profiles
from lib.channel import Channel
from lib.consoles import Consoles, ConsoleSpec
from lib.cpu import CpuMeter
from lib.figures import fmt_ms, summary
from lib.load import LoadResult, paced_load
from lib.machine import describe, machine
from lib.procfs import loadavg, process_tree
from lib.rawhttp import RawPool, http_request
from lib.report import args_json, write_report
from lib.sched import CLIENT_SCHED_HELP, client_policy, use_uvloop
from lib.stack import Stack, stack
from lib.staff import Session, login, make_users
from lib.threads import ThreadStates
from lib.tickets import claim, open_tickets
from lib.tokens import token_re, token_turn

HERE = Path(__file__).resolve().parent
TARGET_P99_MS = 25.0


# --- one round -----------------------------------------------------------------------------

@dataclass
class Round:
    round: int
    ingest_rate: float
    replies: dict[str, float]  # POST -> arrival, ms
    direct: dict[str, float]
    reply_post: dict[str, float]  # POST -> 201, ms
    lost_replies: int
    lost_direct: int
    bad_replies: dict[int, int]
    parts: dict[str, dict[str, float]]
    ingest: LoadResult | None
    cpu: str
    load_before: str
    reply_lats: list[float]
    direct_lats: list[float]
    threads: dict[str, dict[str, int]] = field(default_factory=dict)


def reply_text(run: str, seq: int) -> str:
    return f"Bonjour, je regarde votre commande {run}x{seq}y tout de suite."


async def _drive(st: Stack, channel: Channel, sessions: list[Session], claimed: list[int],
                 users: list[str], args: argparse.Namespace, rnd: int, ingest_rate: float,
                 run_id: str) -> tuple[LoadResult, LoadResult, LoadResult | None]:
    run_c, run_d, run_i = f"k{run_id}c{rnd}", f"k{run_id}d{rnd}", f"i{run_id}n{rnd}"
    span = args.warmup + args.duration
    n_replies = int(span * args.replies_per_second)
    replies = []
    for i in range(n_replies):
        ticket = claimed[i % len(claimed)]
        session = sessions[i % len(sessions)]
        replies.append(http_request(
            "POST", f"/api/tickets/{ticket}/messages", st.port,
            json.dumps({"text": reply_text(run_c, i)}).encode(),
            {"Cookie": f"connector_session={session.cookie}", "X-CSRF-Token": session.csrf,
             "Origin": st.base}))
    direct = [http_request("POST", "/chatlayer", channel.port, json.dumps({
        "recipient": {"id": users[i % len(users)]},
        "verifyToken": st.integration["verify_token"],
        "message": {"text": reply_text(run_d, i)}}).encode(),
        {"Idempotency-Key": secrets.token_hex(16), "User-Agent": "bench/delivery"})
        for i in range(n_replies)]
    ingest = [http_request("POST", st.hook_path, st.port,
                           token_turn(users[i % len(users)], run_i, i))
              for i in range(int(span * ingest_rate))]

    reply_pool = await RawPool(st.port, args.reply_connections).open()
    direct_pool = await RawPool(channel.port, args.reply_connections).open()
    ingest_pool = await RawPool(st.port, args.http_connections).open() if ingest else None
    try:
        async def offset(delay: float, coro: Any) -> Any:
            await asyncio.sleep(delay)
            return await coro

        jobs = [paced_load(reply_pool, replies, args.replies_per_second),
                offset(0.5 / args.replies_per_second,
                       paced_load(direct_pool, direct, args.replies_per_second))]
        if ingest_pool is not None:
            jobs.append(paced_load(ingest_pool, ingest, ingest_rate))
        results = await asyncio.gather(*jobs)
    finally:
        for pool in (reply_pool, direct_pool, ingest_pool):
            if pool is not None:
                await pool.close()
    return results[0], results[1], results[2] if ingest else None


def run_round(st: Stack, channel: Channel, sessions: list[Session], claimed: list[int],
              users: list[str], args: argparse.Namespace, rnd: int, ingest_rate: float,
              run_id: str, consoles_headers: list[dict[str, str]]) -> Round:
    consoles = None
    if args.consoles and ingest_rate:
        consoles = Consoles(ConsoleSpec(url=f"ws://127.0.0.1:{st.port}/ws",
                                        headers=consoles_headers, count=args.consoles,
                                        sched=args.client_sched))
        consoles.wait_ready()
    load_before = loadavg()
    assert st.connector is not None
    pids: dict[str, int | list[int]] = {
            "server": process_tree(st.connector.proc.pid), "channel": channel.proc.pid or 0,
            "client": os.getpid()}
    if consoles is not None:
        pids["consoles"] = consoles.pid
    meter = CpuMeter(pids)
    meter.start()
    states = ThreadStates(st.connector.proc.pid).start()
    try:
        with client_policy(args.client_sched):
            rep, dire, ing = asyncio.run(_drive(st, channel, sessions, claimed, users, args,
                                                rnd, ingest_rate, run_id))
        # Wait for the last deliveries (retries would take >= 1 s: they count as late).
        run_c, run_d = f"k{run_id}c{rnd}", f"k{run_id}d{rnd}"
        arrivals_c: dict[int, int] = {}
        arrivals_d: dict[int, int] = {}
        deadline = time.monotonic() + args.drain
        while True:
            got_c, _ = channel.take(run_c)
            got_d, _ = channel.take(run_d)
            arrivals_c.update(got_c)
            arrivals_d.update(got_d)
            if (len(arrivals_c) >= rep.sent and len(arrivals_d) >= dire.sent) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        meter.stop()
    finally:
        states.stop()
        if consoles is not None:
            consoles.finish()
            consoles.kill()

    warm = int(args.warmup * args.replies_per_second)

    def lats(load: LoadResult, arrivals: dict[int, int]) -> tuple[list[float], int]:
        out, lost = [], 0
        for i in range(warm, load.sent):
            t = arrivals.get(i)
            if t is None:
                lost += 1
            else:
                out.append((t - load.send_ns[i]) / 1e6)
        return out, lost

    parts = breakdown(st.db, run_c, rep, warm)
    rl, rlost = lats(rep, arrivals_c)
    dl, dlost = lats(dire, arrivals_d)
    bad = {k: v for k, v in rep.statuses.items() if k != 201}
    r = Round(round=rnd, ingest_rate=ingest_rate, replies=summary(rl), direct=summary(dl),
              reply_post=rep.latency_ms, lost_replies=rlost, lost_direct=dlost, bad_replies=bad,
              parts=parts,
              ingest=ing, cpu=meter.line(), load_before=load_before, reply_lats=rl,
              direct_lats=dl)
    label = f"round {rnd}" + (" (no ingest load)" if not ingest_rate else "")
    print(f"  {label}   load {load_before}")
    print(f"    reply  -> channel {fmt_ms(r.replies)}   lost {rlost}"
          + (f"   non-201 {bad}" if bad else ""))
    print(f"    direct -> channel {fmt_ms(r.direct)}   lost {dlost}")
    print(f"    replies sent at {rep.achieved:.1f}/s; where the time goes (server timestamps):")
    for name, v in parts.items():
        print(f"      {name:50s} p50 {v['p50']:8.2f} ms   p99 {v['p99']:8.2f} ms"
              f"   max {v['max']:8.2f} ms")
    if ing is not None:
        print(f"    ingest {ing.line()}")
        if not ing.keeps_up():
            print(f"    WARNING: the ingest load did not keep to {ingest_rate:g}/s "
                  f"(achieved {ing.achieved:.1f}/s, send lag p99 {ing.lag_ms['p99']:.0f} ms): "
                  "the server does not keep up with it")
    print(f"    cpu (% of one core): {r.cpu}")
    print("    server threads (% of the round, sampled from /proc/PID/task/*/syscall):")
    for line in states.lines():
        print(f"      {line}")
    r.threads = states.counts
    return r


WALL_OFFSET_NS = time.time_ns() - time.monotonic_ns()  # CLOCK_MONOTONIC -> wall clock


def breakdown(db: Path, run: str, load: LoadResult, warm: int) -> dict[str, dict[str, float]]:
    """Split each reply's latency with the server's own timestamps (same machine clock).

    From the database: the reply message's `created_at` (set inside the reply's
    transaction, after BEGIN IMMEDIATE got the write lock), and the first
    delivery attempt's `at` (after the channel answered) minus its
    `duration_ms` (the HTTP call): when the worker started sending. A reply
    handed to the worker in memory may be on its way before the client has
    read the 201, so "201 -> worker starts" can be negative.
    """
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT m.text, m.created_at, a.at, a.duration_ms FROM message m "
            "JOIN delivery d ON d.message_id = m.id "
            "JOIN delivery_attempt a ON a.delivery_id = d.id AND a.attempt = 1 "
            "WHERE m.kind = 'agent' AND m.text LIKE ?", (f"%{run}x%",)).fetchall()
    finally:
        conn.close()
    rx = token_re(run)

    def wall_ns(text: str) -> int:
        t = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        return int(t.timestamp() * 1e6) * 1000

    parts: dict[str, list[float]] = {"POST -> reply transaction holds the write lock": [],
                                     "POST -> 201 answered": [],
                                     "201 -> worker starts the HTTP call": [],
                                     "HTTP call to the channel (httpx, until answered)": []}
    for text, created, at, duration_ms in rows:
        m = rx.search(text)
        if m is None or int(m.group(1)) < warm or int(m.group(1)) >= load.sent:
            continue
        i = int(m.group(1))
        sent = load.send_ns[i] + WALL_OFFSET_NS
        answered = sent + (load.done_ns[i] - load.send_ns[i])
        http_start = wall_ns(at) - int(duration_ms * 1e6)
        parts["POST -> reply transaction holds the write lock"].append(
            (wall_ns(created) - sent) / 1e6)
        parts["POST -> 201 answered"].append((answered - sent) / 1e6)
        parts["201 -> worker starts the HTTP call"].append((http_start - answered) / 1e6)
        parts["HTTP call to the channel (httpx, until answered)"].append(duration_ms)
    return {k: summary(v) for k, v in parts.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replies-per-second", type=float, default=20)
    p.add_argument("--rate", type=float, default=500, help="ingest turns per second")
    p.add_argument("--duration", type=float, default=10, help="measured seconds per round")
    p.add_argument("--warmup", type=float, default=2, help="seconds first, not counted")
    p.add_argument("--drain", type=float, default=30, help="most seconds to wait for arrivals")
    p.add_argument("--rounds", type=int, default=2, help="rounds under the ingest load")
    p.add_argument("--no-idle-round", dest="idle_round", action="store_false",
                   help="skip round 0 (no ingest load)")
    p.add_argument("--users", type=int, default=200, help="end users with an open ticket")
    p.add_argument("--tickets", type=int, default=50, help="tickets claimed and replied to")
    p.add_argument("--agents", type=int, default=5)
    p.add_argument("--client-sched", choices=("batch", "normal"), default="normal",
                   help=CLIENT_SCHED_HELP)
    p.add_argument("--consoles", type=int, default=100,
                   help="supervisor consoles connected during the ingest load")
    p.add_argument("--http-connections", type=int, default=64, help="for the ingest load")
    p.add_argument("--reply-connections", type=int, default=8)
    p.add_argument("--profile", metavar="PREFIX",
                   help="one more loaded round under py-spy (not counted): PREFIX.txt, .svg")
    p.add_argument("--source", type=Path, default=HERE.parent)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--smoke", action="store_true", help="a few seconds, small numbers")
    args = p.parse_args(argv)
    if args.smoke:
        args.replies_per_second, args.rate, args.duration, args.warmup = 10, 50, 2, 0.5
        args.rounds, args.users, args.tickets, args.agents = 1, 10, 5, 2
        args.drain, args.http_connections, args.reply_connections = 10, 8, 4
        args.consoles = min(args.consoles, 5)
    args.tickets = min(args.tickets, args.users)
    loop = use_uvloop()
    run_id = secrets.token_hex(3)
    channel = Channel()
    runs: list[Round] = []
    try:
        with stack(source=args.source, keep=args.keep, channel_url=channel.url) as st:
            conn = st.start_connector()
            users = [f"user-{i}" for i in range(args.users)]
            ticket_ids = asyncio.run(open_tickets(st, users))
            # Each agent claims tickets/agents of them: more than the default capacity.
            agents = make_users(st, "agent", "agent", args.agents, max_concurrent=1000)
            sessions = [login(st, a) for a in agents]
            claimed = ticket_ids[:args.tickets]
            for i, ticket in enumerate(claimed):
                claim(st, sessions[i % len(sessions)], ticket)
            # Replies to ticket k must come from the agent who claimed it.
            by_ticket = {t: sessions[i % len(sessions)] for i, t in enumerate(claimed)}
            ordered = [by_ticket[t] for t in claimed]
            consoles_headers: list[dict[str, str]] = []
            if args.consoles:
                sups = make_users(st, "sup", "supervisor", min(10, args.consoles))
                consoles_headers = [login(st, s).ws_headers(st.base) for s in sups]
            print(f"machine: {machine()}; client loop {loop}; client processes {args.client_sched} "
                  "scheduling")
            print(f"connector source: {describe(st.source)}")
            print(f"workload: {args.replies_per_second:g} replies/s over {len(claimed)} claimed "
                  f"tickets ({args.agents} agents), the same rate of direct POSTs to the "
                  f"channel, ingest {args.rate:g} turns/s from {args.users} end users in "
                  f"handover" + (f" with {args.consoles} supervisor consoles" if args.consoles
                                  else "") +
                  f"; {args.warmup:g} s warm-up + {args.duration:g} s per round; connector "
                  f"pid {conn.proc.pid}, channel pid {channel.proc.pid}; load {loadavg()}")
            plan = ([(0, 0.0)] if args.idle_round else []) + \
                [(r, args.rate) for r in range(1, args.rounds + 1)]
            for rnd, rate in plan:
                # Reply i goes to claimed[i % n] from ordered[i % n], who claimed it.
                runs.append(run_round(st, channel, ordered, claimed, users, args, rnd, rate,
                                      run_id, consoles_headers))
                st.check_alive()
            ok = report(runs)
            if args.profile:
                profile(st, channel, ordered, claimed, users, args, run_id, consoles_headers)
            if args.json:
                write_report(args.json, {
                    "machine": machine(), "source": describe(st.source), "load_at_end": loadavg(),
                    "args": args_json(args),
                    "runs": [{"round": r.round, "ingest_rate": r.ingest_rate,
                              "reply_ms": r.replies, "direct_ms": r.direct,
                              "reply_post_ms": r.reply_post, "parts_ms": r.parts,
                              "lost_replies": r.lost_replies,
                              "lost_direct": r.lost_direct, "bad_replies": r.bad_replies,
                              "ingest_achieved": r.ingest.achieved if r.ingest else None,
                              "cpu": r.cpu, "load_before": r.load_before} for r in runs]})
    finally:
        channel.close()
    return 0 if ok else 1


def report(runs: list[Round]) -> bool:
    print()
    loaded = [r for r in runs if r.ingest_rate]
    ok = all(r.lost_replies == 0 and not r.bad_replies for r in runs)
    for label, rs in (("no ingest load", [r for r in runs if not r.ingest_rate]),
                      ("under ingest load", loaded)):
        if not rs:
            continue
        rep = summary([x for r in rs for x in r.reply_lats])
        dire = summary([x for r in rs for x in r.direct_lats])
        print(f"{label}:")
        print(f"  reply  -> channel {fmt_ms(rep)}   lost {sum(r.lost_replies for r in rs)}")
        print(f"  direct -> channel {fmt_ms(dire)}   lost {sum(r.lost_direct for r in rs)}")
        print(f"  ratio reply/direct: p50 {rep['p50'] / dire['p50']:.1f}x, "
              f"p99 {rep['p99'] / dire['p99']:.1f}x")
        if rs is loaded:
            print(f"  reply p99 {rep['p99']:.1f} ms under load: target <= {TARGET_P99_MS:g} ms "
                  + ("met" if rep["p99"] <= TARGET_P99_MS else "MISSED"))
    if not ok:
        print("FAIL: some replies were refused or never arrived")
    return ok


def profile(st: Stack, channel: Channel, ordered: list[Session], claimed: list[int],
            users: list[str], args: argparse.Namespace, run_id: str,
            consoles_headers: list[dict[str, str]]) -> None:
    """One more loaded round under py-spy, twice: collapsed stacks, then a flame graph."""
    assert st.connector is not None
    for n, fmt, out in profiles.outputs(args.profile):
        with profiles.recording(st.connector.proc.pid, out,
                                int(args.warmup + args.duration + 2), fmt, timeout=180):
            print(f"profiled round (not counted) -> {out}")
            run_round(st, channel, ordered, claimed, users, args, 100 + n, args.rate, run_id,
                      consoles_headers)


if __name__ == "__main__":
    sys.exit(main())
