"""Where the ingest time goes, in-process: the write path without HTTP.

    python3 bench/ingest_profile.py [--events 5000] [--concurrency 64] [--cprofile 30]

Feeds the connector's own `IngestWriter` (the group-commit writer behind
POST /hooks/smartly/...) with the same `message_received` bodies as
bench/ingest.lua, `--concurrency` submissions at a time, each time against a
fresh SQLite file, and splits the cost of one event:

1. decode and validate: json.loads (and orjson.loads for comparison),
   pydantic validation (ingest.parse_smartly), sha256 fingerprint;
2. the write path as shipped (aiosqlite): wall time, main-thread CPU, SQL
   statements, aiosqlite thread round trips and commits per event, and the time
   spent inside SQLite on the aiosqlite worker thread;
3. the same write path with aiosqlite's thread hop removed (every call run
   inline on the event loop thread): the difference to 2 is the cost of the
   hops;
4. the exact statements of run 2, replayed with the bare `sqlite3` module
   (same PRAGMAs, same transactions, same fsyncs): the SQLite floor. The
   difference between 3 and 4 is SQLAlchemy and the connector's Python code.

With --cprofile N it also prints the N functions with the most cumulative time
in run 2. Use --source to profile another checkout than this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import json
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

TEMPLATE: dict[str, Any] = {
    "event": "message_received",
    "payload": {
        "input": "", "corrected_input": "", "intent": "OrderStatusIntent",
        "intent_slug": "orderStatusfrfr", "intent_id": "123abc", "confidence": 0.87,
        "confidence_threshold": 0.2, "custom_entities": {}, "system_entities": {},
        "alternatives": [], "understood": True, "understood_nlu": True, "never_trained": False,
        "state_id": "123abc", "state_name": "suivi de commande",
        "answer": "Votre commande est en cours de livraison", "reprompt": None,
        "end_session": False, "user_id": "", "platform": "webchat", "muted": False,
        "need_help": False, "handover_category_name": "", "payload": {}, "no_reply_prompt": "",
        "probabilistic_nlu_processing_time": 0.093, "rule_based_nlu_processing_time": 0,
        "dialog_management_processing_time": 0.005, "rich_text": [],
        "show_answer_survey": False, "show_conversation_survey": False,
        "webchat_input_place_holder": "", "webchat_hidden_input": None,
        "has_webhook_integration": True, "lang": "fr-fr", "skill_id": "123abc",
        "input_type": "text", "client_id": "", "master_bot": False, "client_session_id": "",
        "first_client_session_id": None,
        "nlu_model": {"name": "SNP 1.06", "version": "1.06 RC3"},
        "number_of_nounderstood": 0, "is_smartly_integration": True, "is_simulator": False,
        "event_name": "NEW_INPUT", "total_processing_time": 0.269,
    },
}


def bodies(n: int, users: int, help_percent: float, salt: str) -> list[bytes]:
    """Unique bodies shaped like bench/ingest.lua's."""
    rng = random.Random(salt)
    out = []
    for i in range(n):
        body = json.loads(json.dumps(TEMPLATE))
        p = body["payload"]
        user = f"user-{rng.randrange(users)}"
        help_ = rng.random() * 100 < help_percent
        ref = f"{salt}-{i}"
        p["input"] = p["corrected_input"] = f"Bonjour, ma commande {ref} n'est pas arrivée"
        p["user_id"] = p["client_id"] = user
        p["client_session_id"] = f"sess-{ref}"
        p["need_help"] = p["muted"] = help_
        p["total_processing_time"] = round(0.2 + i / 1e7, 7)
        if help_:
            p["answer"] = "Nous allons vérifier si un agent est disponible"
        out.append(json.dumps(body, ensure_ascii=False).encode())
    return out


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def per_call_us(fn: Callable[[Any], Any], items: list[Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t)
    return best / len(items) * 1e6


@dataclass
class Measured:
    label: str
    events: int
    wall: float
    cpu: float
    in_sqlite: float
    commits: int
    stats: Counter[str]
    log: list[tuple[Any, ...]] = field(default_factory=list)
    start_index: int = 0
    db_template: Path | None = None
    integration_id: str = ""


@contextlib.contextmanager
def inline_aiosqlite() -> Iterator[None]:
    """Run every aiosqlite call on the calling (event loop) thread: no thread hop."""
    import aiosqlite.core

    original = aiosqlite.core.Connection._execute

    async def _execute(self, fn, *args, **kwargs):
        if not self._running or (self._connection is None and fn is not self._connector):
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    aiosqlite.core.Connection._execute = _execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]


async def measure(args: argparse.Namespace, raws: list[bytes], label: str, *, inline: bool,
                  record: bool = False, cprofile: int = 0) -> Measured:
    import aiosqlite.core
    import sqlalchemy as sa

    from connector import integrations
    from connector.batcher import IngestWriter
    from connector.bus import MemoryBus
    from connector.db import create_engine
    from connector.ingest import parse_smartly
    from connector.migrate import upgrade
    from connector.settings import Settings
    from connector.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-profile-"))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp / 'c.db'}", log_level="warning")
    await asyncio.to_thread(upgrade, settings)
    stats: Counter[str] = Counter()
    in_thread = [0.0]
    lock = threading.Lock()
    log: list[tuple[Any, ...]] = []
    original = aiosqlite.core.Connection._execute

    async def counting_execute(self, fn, *a, **kw):
        stats["aiosqlite round trips"] += 1
        stats["  hop " + getattr(fn, "__name__", "?")] += 1

        def timed() -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                with lock:
                    in_thread[0] += time.perf_counter() - t
        return await original(self, timed)

    ctx = inline_aiosqlite() if inline else contextlib.nullcontext()
    with ctx:
        if not inline:
            aiosqlite.core.Connection._execute = counting_execute  # type: ignore[method-assign]
        try:
            engine = create_engine(settings)
            async with engine.begin() as conn:
                created = await integrations.create(conn, name="bench",
                                                    channel_url="http://x.invalid/")
            integ = created.integration.id
            template = tmp / "template.db"
            if record:
                await engine.dispose()
                shutil.copy(tmp / "c.db", template)
                engine = create_engine(settings)

            @sa.event.listens_for(engine.sync_engine, "before_cursor_execute")
            def _count(conn, cursor, statement, parameters, context, executemany):
                stats["statements"] += 1
                words = statement.split(None, 3)
                table = words[2] if words[0] in ("INSERT", "DELETE") else words[1]
                stats[f"  stmt {words[0]} {table[:24]}"] += 1
                if record:
                    log.append(("sql", statement, parameters, executemany))

            @sa.event.listens_for(engine.sync_engine, "commit")
            def _commit(conn):
                stats["commits"] += 1
                if record:
                    log.append(("commit",))

            @sa.event.listens_for(engine.sync_engine, "rollback")
            def _rollback(conn):
                if record:
                    log.append(("rollback",))

            parsed = [parse_smartly(integ, json.loads(r), r) for r in raws]
            writer = IngestWriter(Store(engine, MemoryBus()), dedupe_window=600,
                                  batch_max=settings.ingest_batch_max)
            writer.start()

            async def feed(items: list[Any]) -> None:
                queue = list(reversed(items))

                async def client() -> None:
                    while queue:
                        await writer.submit(queue.pop())

                await asyncio.gather(*(client() for _ in range(args.concurrency)))

            await feed(parsed[:args.warmup])
            stats.clear()
            in_thread[0] = 0.0
            start_index = len(log)
            profiler = cProfile.Profile() if cprofile else None
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            await feed(parsed[args.warmup:])
            if profiler:
                profiler.disable()
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
            await writer.stop()
            await engine.dispose()
        finally:
            if not inline:
                aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]
    if profiler:
        for order in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats(order).print_stats(cprofile)
            print(buf.getvalue())
    if not record:
        shutil.rmtree(tmp, ignore_errors=True)
    return Measured(label, len(raws) - args.warmup, wall, cpu, in_thread[0],
                    stats["commits"], stats, log, start_index,
                    template if record else None, integ)


def _connect_sqlite(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, isolation_level=None, timeout=30, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                   "busy_timeout=30000"):
        con.execute(f"PRAGMA {pragma}")
    return con


def _kind(statement: str) -> str:
    words = statement.split(None, 3)
    table = words[2] if words[0] in ("INSERT", "DELETE") else words[1]
    return f"{words[0]} {table[:24]}"


def replay(m: Measured) -> tuple[float, Counter[str]]:
    """Re-run the recorded statements with bare sqlite3: seconds, and seconds per kind."""
    assert m.db_template is not None
    db = m.db_template.with_name("replay.db")
    shutil.copy(m.db_template, db)
    con = _connect_sqlite(db)
    kinds: Counter[str] = Counter()

    def run(entries: list[tuple[Any, ...]]) -> None:
        for entry in entries:
            t = time.perf_counter()
            if entry[0] == "commit":
                if con.in_transaction:
                    con.commit()
                kinds["COMMIT (fsync)"] += time.perf_counter() - t
            elif entry[0] == "rollback":
                if con.in_transaction:
                    con.rollback()
            else:
                _, statement, params, many = entry
                if many:
                    con.executemany(statement, params)
                else:
                    con.execute(statement, params).fetchall()
                kinds[_kind(statement)] += time.perf_counter() - t

    run(m.log[:m.start_index])
    kinds.clear()
    t = time.perf_counter()
    run(m.log[m.start_index:])
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed, kinds


# --- Prototype: the same writes, set-oriented (a handful of statements per batch) ---------

SQL_DEDUPE = ("INSERT INTO dedupe_key (integration_id, fingerprint, seen_at) VALUES {values} "
              "ON CONFLICT (integration_id, fingerprint) DO UPDATE SET seen_at = excluded.seen_at "
              "WHERE dedupe_key.seen_at < ? RETURNING fingerprint")
SQL_INBOUND = ("INSERT INTO inbound_event (id, integration_id, source, event, status, body, "
               "received_at) VALUES (?, ?, 'smartly', ?, 'processed', ?, ?)")
SQL_CONV_INSERT = ("INSERT INTO conversation (integration_id, end_user_id, last_seq, lang, "
                   "platform, created_at, updated_at) VALUES (?, ?, 0, ?, ?, ?, ?) "
                   "ON CONFLICT (integration_id, end_user_id) DO NOTHING")
SQL_CONV_SELECT = ("SELECT id, end_user_id, open_ticket_id, last_seq, lang, platform "
                   "FROM conversation WHERE integration_id = ? AND end_user_id IN ({marks})")
SQL_MESSAGE = ("INSERT INTO message (id, conversation_id, seq, ticket_id, kind, author_id, "
               "text, body, context, event_id, created_at) "
               "VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)")
SQL_CONV_UPDATE = ("UPDATE conversation SET last_seq = ?, open_ticket_id = ?, lang = ?, "
                   "platform = ?, updated_at = ? WHERE id = ?")
SQL_TICKET = ("INSERT INTO ticket (conversation_id, integration_id, state, reason, lang, "
              "platform, skill_id, category, opened_at, version) "
              "VALUES (?, ?, 'queued', 'need_help', ?, ?, ?, ?, ?, 1)")
SQL_TRANSITION = ("INSERT INTO ticket_transition (ticket_id, action, from_state, to_state, "
                  "actor_id, assignee_id, at) VALUES (?, 'opened', NULL, 'queued', NULL, NULL, ?)")
SQL_COUNTER = ("UPDATE counter SET value = value + ? WHERE name = 'stream' RETURNING value")
SQL_STREAM = ("INSERT INTO stream_event (id, type, ticket_id, public, user_ids, payload, "
              "created_at) VALUES (?, ?, ?, ?, NULL, ?, ?)")
CONTEXT_FIELDS = ("intent", "intent_slug", "confidence", "state_id", "state_name", "platform",
                  "lang", "client_session_id", "handover_category_name", "skill_id", "need_help",
                  "muted", "input_type", "understood", "event_name")


def prototype_batch(con: sqlite3.Connection, integ: str,
                    batch: list[tuple[bytes, dict[str, Any]]], window_s: float = 600) -> int:
    """One transaction for a whole batch: the writes of `ingest.apply` for each turn.

    Returns the number of statements executed. Ids come from MAX(id) + n under
    the write lock (BEGIN IMMEDIATE), so executemany needs no RETURNING.
    """
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = now.isoformat(" ")
    cutoff = (now - dt.timedelta(seconds=window_s)).isoformat(" ")
    statements = 0
    con.execute("BEGIN IMMEDIATE")
    fps = [hashlib.sha256(raw).hexdigest() for raw, _ in batch]
    values = ", ".join(["(?, ?, ?)"] * len(batch))
    params: list[Any] = [x for fp in fps for x in (integ, fp, stamp)]
    fresh = {r[0] for r in con.execute(SQL_DEDUPE.format(values=values),
                                       [*params, cutoff]).fetchall()}
    statements += 1
    todo = []
    for fp, item in zip(fps, batch, strict=True):
        if fp in fresh:
            fresh.discard(fp)
            todo.append(item)
    if not todo:
        con.execute("COMMIT")
        return statements + 2
    event_base = con.execute("SELECT COALESCE(MAX(id), 0) FROM inbound_event").fetchone()[0]
    message_base = con.execute("SELECT COALESCE(MAX(id), 0) FROM message").fetchone()[0]
    statements += 2
    con.executemany(SQL_INBOUND, [
        (event_base + i + 1, integ, body["event"], json.dumps(body), stamp)
        for i, (_, body) in enumerate(todo)])
    users = {}
    for _, body in todo:
        p = body["payload"]
        users.setdefault(str(p.get("user_id") or p.get("client_id")), p)
    con.executemany(SQL_CONV_INSERT, [(integ, u, p.get("lang"), p.get("platform"), stamp, stamp)
                                      for u, p in users.items()])
    rows = con.execute(SQL_CONV_SELECT.format(marks=", ".join("?" * len(users))),
                       [integ, *users]).fetchall()
    statements += 3
    convs = {r[1]: list(r) for r in rows}  # id, user, open_ticket_id, last_seq, lang, platform
    messages: list[tuple[Any, ...]] = []
    stream: list[tuple[str, int, bool, str]] = []
    opened = []

    def add(conv: list[Any], kind: str, text: str, body: Any, context: Any,
            event_id: int | None) -> None:
        conv[3] += 1
        mid = message_base + len(messages) + 1
        messages.append((mid, conv[0], conv[3], conv[2], kind, text,
                         json.dumps(body) if body is not None else None,
                         json.dumps(context), event_id, stamp))
        if conv[2] is not None:
            stream.append(("message.created", conv[2], False, json.dumps({
                "ticket": conv[2], "message": {
                    "id": mid, "seq": conv[3], "conversation_id": conv[0],
                    "ticket_id": conv[2], "kind": kind, "author": None, "text": text,
                    "message": body, "context": context, "created_at": stamp}})))

    for i, (_, body) in enumerate(todo):
        p = body["payload"]
        conv = convs[str(p.get("user_id") or p.get("client_id"))]
        conv[4], conv[5] = p.get("lang") or conv[4], p.get("platform") or conv[5]
        context = {k: p[k] for k in CONTEXT_FIELDS if k in p}
        if p.get("input"):
            add(conv, "user", p["input"], None, context, event_base + i + 1)
        if p.get("answer"):
            add(conv, "bot", p["answer"], {"text": p["answer"]}, context, event_base + i + 1)
        if p.get("need_help") and conv[2] is None:
            cur = con.execute(SQL_TICKET, (conv[0], integ, p.get("lang"), p.get("platform"),
                                           p.get("skill_id"), p.get("handover_category_name")
                                           or None, stamp))
            conv[2] = cur.lastrowid
            con.execute(SQL_TRANSITION, (conv[2], stamp))
            statements += 2
            opened.append(conv[2])
            stream.append(("ticket.created", conv[2], True, json.dumps(
                {"ticket": {"id": conv[2], "state": "queued"}})))
            add(conv, "system", "The bot asked for a human: handover started", None,
                {"event": "handover", "reason": "need_help"}, None)
    con.executemany(SQL_MESSAGE, messages)
    con.executemany(SQL_CONV_UPDATE, [(c[3], c[2], c[4], c[5], stamp, c[0])
                                      for c in convs.values()])
    statements += 2
    if stream:
        last = con.execute(SQL_COUNTER, (len(stream),)).fetchone()[0]
        first = last - len(stream) + 1
        con.executemany(SQL_STREAM, [(first + i, t, tid, public, payload, stamp)
                                     for i, (t, tid, public, payload) in enumerate(stream)])
        statements += 2
    con.execute("COMMIT")
    return statements + 2


class _SQLAlchemyAdapter:
    """`prototype_batch` over a SQLAlchemy Connection (inside AsyncConnection.run_sync).

    Every statement goes through SQLAlchemy's execution path and, underneath,
    aiosqlite's thread hop, as the connector's own statements do. BEGIN and
    COMMIT are left to `engine.begin()` (which issues BEGIN IMMEDIATE).
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql in ("BEGIN IMMEDIATE", "COMMIT"):
            return None
        return self.conn.exec_driver_sql(sql, tuple(params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.conn.exec_driver_sql(sql, rows)


async def prototype_sqlalchemy(m: Measured, raws: list[bytes], warmup: int,
                               batch: int) -> float:
    """The prototype's statements through SQLAlchemy + aiosqlite; seconds (measured part)."""
    from connector.db import create_engine
    from connector.settings import Settings

    assert m.db_template is not None
    db = m.db_template.with_name("prototype-sqlalchemy.db")
    shutil.copy(m.db_template, db)
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{db}"))
    items = [(r, json.loads(r)) for r in raws]

    async def write(chunk: list[tuple[bytes, dict[str, Any]]]) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: prototype_batch(
                _SQLAlchemyAdapter(c), m.integration_id, chunk))  # type: ignore[arg-type]

    for i in range(0, warmup, batch):
        await write(items[i:min(i + batch, warmup)])
    t = time.perf_counter()
    for i in range(warmup, len(items), batch):
        await write(items[i:i + batch])
    elapsed = time.perf_counter() - t
    await engine.dispose()
    con = sqlite3.connect(db)
    count = con.execute("SELECT COUNT(*) FROM inbound_event").fetchone()[0]
    con.close()
    if count != len(items):
        raise SystemExit(f"prototype stored {count} events, expected {len(items)}")
    return elapsed


def prototype(m: Measured, raws: list[bytes], warmup: int, batch: int) -> tuple[float, int]:
    """The prototype writer on the template database: seconds and statements (measured part)."""
    assert m.db_template is not None
    db = m.db_template.with_name("prototype.db")
    shutil.copy(m.db_template, db)
    con = _connect_sqlite(db)
    items = [(r, json.loads(r)) for r in raws]
    for i in range(0, warmup, batch):
        prototype_batch(con, m.integration_id, items[i:min(i + batch, warmup)])
    statements = 0
    t = time.perf_counter()
    for i in range(warmup, len(items), batch):
        statements += prototype_batch(con, m.integration_id, items[i:i + batch])
    elapsed = time.perf_counter() - t
    count = con.execute("SELECT COUNT(*) FROM inbound_event").fetchone()[0]
    con.close()
    if count != len(items):
        raise SystemExit(f"prototype stored {count} events, expected {len(items)}")
    return elapsed, statements


async def run(args: argparse.Namespace) -> None:
    from connector.ingest import parse_smartly

    n = args.events
    raws = bodies(n + args.warmup, args.users, args.help_percent, f"{time.time_ns():x}")
    sample = raws[:2000]
    decoded = [json.loads(r) for r in sample]
    print(f"events {n} (+{args.warmup} warm-up), concurrency {args.concurrency}, "
          f"{args.users} users, {args.help_percent:g}% need_help, "
          f"body {sum(map(len, sample)) / len(sample):.0f} bytes")
    print("\n1. decode and validate, per event")
    print(f"   json.loads                         {per_call_us(json.loads, sample):8.1f} us")
    try:
        import orjson

        print(f"   orjson.loads (for comparison)      {per_call_us(orjson.loads, sample):8.1f} us")
    except ImportError:
        pass
    pairs = list(zip(decoded, sample, strict=True))
    print("   parse_smartly (pydantic + sha256)  "
          f"{per_call_us(lambda p: parse_smartly('x', p[0], p[1]), pairs):8.1f} us")
    print("     of which sha256 fingerprint      "
          f"{per_call_us(lambda r: hashlib.sha256(r).hexdigest(), sample):8.1f} us")
    print("   json.dumps (JSON column on write)  "
          f"{per_call_us(json.dumps, decoded):8.1f} us")

    shipped = await measure(args, raws, "as shipped (aiosqlite)", inline=False, record=True,
                            cprofile=args.cprofile)
    inline = await measure(args, raws, "aiosqlite inline, no thread hop", inline=True)
    floor, kinds = replay(shipped)
    proto, proto_statements = prototype(shipped, raws, args.warmup, args.concurrency)
    proto_sa = await prototype_sqlalchemy(shipped, raws, args.warmup, args.concurrency)
    assert shipped.db_template is not None
    shutil.rmtree(shipped.db_template.parent, ignore_errors=True)

    s = shipped.stats
    print("\n2. write path as shipped (IngestWriter -> SQLAlchemy -> aiosqlite -> SQLite)")
    print(f"   wall                 {shipped.wall / n * 1e6:8.1f} us/event "
          f"({n / shipped.wall:,.0f} events/s)")
    print(f"   event-loop CPU       {shipped.cpu / n * 1e6:8.1f} us/event")
    print(f"   inside SQLite        {shipped.in_sqlite / n * 1e6:8.1f} us/event "
          "(on the aiosqlite thread)")
    print(f"   commits              {shipped.commits} ({n / max(shipped.commits, 1):.1f} "
          "events per commit)")
    print(f"   SQL statements       {s['statements'] / n:8.2f} per event")
    print(f"   aiosqlite hops       {s['aiosqlite round trips'] / n:8.2f} per event")
    for key, value in sorted(s.items(), key=lambda kv: (kv[0].split()[0], -kv[1])):
        if key.startswith("  "):
            print(f"     {value / n:6.2f}  {key.strip()}")
    print("\n3. same, aiosqlite calls run inline (no thread hop)")
    print(f"   wall                 {inline.wall / n * 1e6:8.1f} us/event "
          f"({n / inline.wall:,.0f} events/s)")
    print("\n4. the statements of run 2 replayed with bare sqlite3 (same transactions, fsyncs)")
    print(f"   wall                 {floor / n * 1e6:8.1f} us/event ({n / floor:,.0f} events/s)")
    for kind, secs in kinds.most_common():
        print(f"     {secs / n * 1e6:8.1f} us/event  {kind}")
    print("\n5. prototype: the same rows written set-oriented, one transaction per batch of "
          f"{args.concurrency},\n   bare sqlite3, json.dumps and row building included "
          "(bench/ingest_profile.py: prototype_batch)")
    print(f"   wall                 {proto / n * 1e6:8.1f} us/event ({n / proto:,.0f} events/s),"
          f" {proto_statements / n:.2f} statements per event")
    print("   the same statements through SQLAlchemy (exec_driver_sql) + aiosqlite:")
    print(f"   wall                 {proto_sa / n * 1e6:8.1f} us/event "
          f"({n / proto_sa:,.0f} events/s)")
    print("\nsplit of one event's write (run 2 wall):")
    hops = shipped.wall - inline.wall
    sqla = inline.wall - floor
    for name, value in (("aiosqlite thread hops (2 - 3)", hops),
                        ("SQLAlchemy + connector Python (3 - 4)", sqla),
                        ("SQLite itself incl. fsync (4)", floor)):
        print(f"   {name:40s} {value / n * 1e6:8.1f} us  {value / shipped.wall:6.1%}")
    print(f"\nload average: {loadavg()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--help-percent", type=float, default=5.0)
    p.add_argument("--cprofile", type=int, default=0, metavar="N")
    p.add_argument("--source", type=Path, default=HERE.parent)
    args = p.parse_args(argv)
    sys.path.insert(0, str(args.source.resolve()))
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
