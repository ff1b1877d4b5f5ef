"""Full-text search over 1,000,000 messages: `GET /api/search` latency through the real
HTTP API, on SQLite and on PostgreSQL.

Each database is migrated by `connector migrate`, then filled directly (the fast way: no
webhooks): `--messages` messages in conversations of 20 (4 of the bot's history, then a
ticket's 16: end user, agent, now and then an internal note), one ticket each (90%
resolved, 5% assigned, 5% queued; assignees spread over `--agents` agents), over the
past year, with French and English sentences drawn from a vocabulary with accents
(word frequencies falling off like natural text). The search indexes are built in bulk
(SQLite: triggers dropped, FTS5 'rebuild', triggers back; PostgreSQL: GIN index dropped,
COPY, index rebuilt, ANALYZE), then `connector serve` starts on it.

Measured, one request at a time over one keep-alive connection: `--queries` one-word
queries of varied words (common and rare, typed with or without accents) as a signed-in
supervisor and as an agent (who sees only the queue, their own tickets and the bot's
history of those: the visibility filter's cost), and as the baseline in the same run
the `GET /api/session` round trip. p50/p95/p99 per series; the client's CPU; the
server's CPU (and PostgreSQL's backends) over the queries. Target: p95 <= 50 ms.

    PYTHONPATH=. python3 bench/search.py [--database sqlite|postgresql|both]
        [--messages 1000000] [--queries 300] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.cpu import CpuMeter
from bench.lib.figures import percentile
from bench.lib.options import add_run_options
from bench.lib.procfs import process_tree
from bench.lib.procs import cli, wait_ready
from bench.lib.report import args_json, write_report
from bench.lib.services import _plain, postgres_database
from bench.lib.stack import Stack, stack
from bench.lib.staff import PASSWORD

PER_CONVERSATION = 20
BOT_HISTORY = 4
TARGET_P95_MS = 50.0

FRENCH = """
bonjour merci commande livraison colis retard remboursement problème facture paiement
carte compte adresse numéro téléphone réponse question aide service client conseiller
produit article taille couleur échange retour délai semaine mois année jour heure
être avoir faire aller venir pouvoir vouloir devoir savoir prendre donner recevoir
déjà très bien aussi encore toujours jamais peut-être vraiment seulement après avant
le la les un une des du de au aux et ou mais donc car pour avec sans dans sur sous chez
je tu il elle nous vous ils elles mon ma mes votre vos notre nos leur leurs ce cette
café crème thé chocolat pâtisserie boulangerie fenêtre porte clé château forêt hôpital
élève école étudiant été hiver printemps automne noël fête août décembre février
écran clavier imprimante ordinateur logiciel mise à jour connexion mot passe sécurité
fraîche sûr où là-bas déçu ravi désolé énervé inquiet pressé fâché content satisfait
réservation hôtel chambre vol billet train gare aéroport bagage valise annulation
abonnement résiliation offre promotion réduction prix tarif coût gratuit garantie
étiquette emballage abîmé cassé défectueux réparation pièce technicien rendez-vous
""".split()
ENGLISH = """
hello thanks order delivery parcel delay refund problem invoice payment card account
address number phone answer question help service customer agent product item size
colour exchange return week month year day hour the a an and or but so for with
without in on under at I you he she we they my your our their this that is are was
were have has had do does did can could will would should must please sorry happy
angry worried late early broken damaged missing wrong right great bad good still
never always already really only after before subscription cancel price discount
free warranty label package repair appointment booking hotel room flight ticket train
station airport luggage password login screen keyboard printer computer software update
""".split()
#: Words queried: some common, many mid-frequency, some rare; typed as people do (with or
#: without their accents).
RARE_EXTRA = ["naïveté", "crêpe", "façade", "bœuf", "coördinate", "résumé", "fiancée",
              "über", "piñata", "smörgåsbord"]


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    words = list(dict.fromkeys([w for w in FRENCH + ENGLISH if w.isalpha() or "-" in w]
                               + RARE_EXTRA))
    rng.shuffle(words)
    weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(words))]  # Zipf-like
    return words, weights


def sentences(rng: random.Random, words: list[str], weights: list[float],
              count: int) -> Iterator[str]:
    """`count` sentences of 4 to 24 words, capitalised, with punctuation."""
    chunk = 4096
    while count > 0:
        n = min(chunk, count)
        lengths = [rng.randint(4, 24) for _ in range(n)]
        pool = rng.choices(words, weights, k=sum(lengths))
        at = 0
        for length in lengths:
            ws = pool[at:at + length]
            at += length
            text = " ".join(ws)
            yield text[:1].upper() + text[1:] + rng.choice((".", " ?", " !", "...", ""))
        count -= n


def plan(n_messages: int, agent_ids: list[int], seed: int) -> Iterator[tuple[str, Any]]:
    """The rows to insert: ("conversation"|"ticket"|"message", row), in id order."""
    rng = random.Random(seed)
    words, weights = vocabulary(rng)
    n_conv = max(1, n_messages // PER_CONVERSATION)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    step = dt.timedelta(days=365) / n_messages
    texts = sentences(rng, words, weights, n_conv * PER_CONVERSATION)
    mid = 0
    for cid in range(1, n_conv + 1):
        t0 = start + step * mid
        roll = rng.random()
        state = "resolved" if roll < 0.90 else "assigned" if roll < 0.95 else "queued"
        assignee = None if state == "queued" else rng.choice(agent_ids)
        yield "conversation", (cid, f"user-{cid}", PER_CONVERSATION, t0)
        yield "ticket", (cid, cid, state, assignee, t0 + step * BOT_HISTORY)
        for seq in range(1, PER_CONVERSATION + 1):
            mid += 1
            if seq <= BOT_HISTORY:
                kind, ticket, author = ("user" if seq % 2 else "bot"), None, None
            else:
                r = rng.random()
                kind = "note" if r < 0.05 else "user" if seq % 2 else "agent"
                ticket = cid
                author = assignee if kind in ("agent", "note") else None
            yield "message", (mid, cid, seq, ticket, kind, author, next(texts), start + step * mid)


# --- filling ---------------------------------------------------------------------------

def _migration() -> Any:
    return importlib.import_module("connector.storage.migrations.versions.0005_search")


def add_users(insert: Any, agents: int) -> tuple[list[int], dict[str, int]]:
    """The supervisor and the agents, with a real argon2 hash of PASSWORD (one for all)."""
    from connector.accounts.security import hash_password

    hashed = hash_password(PASSWORD)
    now = dt.datetime.now(dt.UTC)
    ids: dict[str, int] = {}
    for i, (name, role) in enumerate([("sup", "supervisor")]
                                     + [(f"agent{i}", "agent") for i in range(agents)]):
        ids[name] = 1000 + i
        insert(1000 + i, name, hashed, role, now)
    return [ids[f"agent{i}"] for i in range(agents)], ids


def fill_sqlite(path: Path, integration: str, n: int, agents: int, seed: int) -> dict[str, int]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")

    def ts(d: dt.datetime) -> str:  # UTCDateTime's text form on SQLite
        return d.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    db.execute("BEGIN")
    agent_ids, ids = add_users(lambda uid, name, h, role, now: db.execute(
        "INSERT INTO app_user (id, username, password_hash, role, disabled, created_at, "
        "password_changed_at, status) VALUES (?, ?, ?, ?, 0, ?, ?, 'offline')",
        (uid, name, h, role, ts(now), ts(now))), agents)
    for name in ("message_fts_au", "message_fts_ad", "message_fts_ai"):
        db.execute(f"DROP TRIGGER {name}")
    batch: dict[str, list[tuple[Any, ...]]] = {"conversation": [], "ticket": [], "message": []}
    sql = {
        "conversation": "INSERT INTO conversation (id, integration_id, end_user_id, last_seq, "
                        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        "ticket": "INSERT INTO ticket (id, conversation_id, integration_id, state, assignee_id, "
                  "reason, opened_at, version, requeues) VALUES (?, ?, ?, ?, ?, 'need_help', ?, "
                  "1, 0)",
        "message": "INSERT INTO message (id, conversation_id, seq, ticket_id, kind, author_id, "
                   "text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    }

    def flush() -> None:
        for table in ("conversation", "ticket", "message"):
            db.executemany(sql[table], batch[table])
            batch[table].clear()

    for table, row in plan(n, agent_ids, seed):
        if table == "conversation":
            cid, user, last, t0 = row
            batch[table].append((cid, integration, user, last, ts(t0), ts(t0)))
        elif table == "ticket":
            tid, cid, state, assignee, opened = row
            batch[table].append((tid, cid, integration, state, assignee, ts(opened)))
        else:
            batch[table].append((*row[:7], ts(row[7])))
        if len(batch["message"]) >= 50_000:
            flush()
    flush()
    db.execute("INSERT INTO message_fts(message_fts) VALUES ('rebuild')")
    for statement in _migration()._SQLITE_UP[1:4]:  # the triggers, as the migration has them
        db.execute(statement)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return ids


async def fill_postgresql(url: str, integration: str, n: int, agents: int,
                          seed: int) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(_plain(url))
    try:
        def naive(d: dt.datetime) -> dt.datetime:  # UTCDateTime: naive UTC on PostgreSQL
            return d.astimezone(dt.UTC).replace(tzinfo=None)

        users: list[tuple[Any, ...]] = []
        agent_ids, ids = add_users(lambda uid, name, h, role, now: users.append(
            (uid, name, h, role, naive(now))), agents)
        await conn.executemany(
            "INSERT INTO app_user (id, username, password_hash, role, disabled, created_at, "
            "password_changed_at, status) VALUES ($1, $2, $3, $4, false, $5, $5, 'offline')",
            users)
        await conn.execute("DROP INDEX ix_message_search")
        batch: dict[str, list[tuple[Any, ...]]] = {"conversation": [], "ticket": [],
                                                   "message": []}
        columns = {
            "conversation": ["id", "integration_id", "end_user_id", "last_seq", "created_at",
                             "updated_at"],
            "ticket": ["id", "conversation_id", "integration_id", "state", "assignee_id",
                       "reason", "opened_at", "version", "requeues"],
            "message": ["id", "conversation_id", "seq", "ticket_id", "kind", "author_id",
                        "text", "created_at"],
        }

        async def flush() -> None:
            for table in ("conversation", "ticket", "message"):
                if batch[table]:
                    await conn.copy_records_to_table(table, records=batch[table],
                                                     columns=columns[table])
                    batch[table].clear()

        for table, row in plan(n, agent_ids, seed):
            if table == "conversation":
                cid, user, last, t0 = row
                batch[table].append((cid, integration, user, last, naive(t0), naive(t0)))
            elif table == "ticket":
                tid, cid, state, assignee, opened = row
                batch[table].append((tid, cid, integration, state, assignee, "need_help",
                                     naive(opened), 1, 0))
            else:
                batch[table].append((*row[:7], naive(row[7])))
            if len(batch["message"]) >= 50_000:
                await flush()
        await flush()
        await conn.execute("CREATE INDEX ix_message_search ON message USING gin (search_vector)")
        for table in ("conversation", "ticket", "message", "app_user"):
            sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: E501, S608 (fixed names)
            await conn.execute(sql)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return ids


# --- measuring -------------------------------------------------------------------------

def query_words(seed: int, count: int) -> list[str]:
    """`count` one-word queries across the whole frequency range, half without accents."""
    import unicodedata

    rng = random.Random(seed + 1)
    words, _ = vocabulary(random.Random(seed))
    out = []
    for _ in range(count):
        w = rng.choice(words)
        if rng.random() < 0.5:
            w = "".join(c for c in unicodedata.normalize("NFD", w)
                        if not unicodedata.combining(c))
        out.append(w.split("-")[0])
    return out


def client_for(st: Stack, username: str) -> Any:
    import httpx

    c = httpx.Client(base_url=st.base, headers={"Origin": st.base}, timeout=60)
    r = c.post("/api/login", json={"username": username, "password": PASSWORD})
    if r.status_code != 200:
        raise SystemExit(f"login {username}: {r.status_code} {r.text}")
    return c


def series(c: Any, paths: list[str]) -> tuple[list[float], float, int]:
    """Latencies in ms of GET `paths` one at a time, the client's CPU seconds, and how many
    results came back in all."""
    out, found = [], 0
    cpu0 = time.process_time()
    for path in paths:
        t0 = time.perf_counter()
        r = c.get(path)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code} {r.text[:300]}")
        found += len(r.json().get("results", ()))
    return out, time.process_time() - cpu0, found


def figures(ms: list[float]) -> dict[str, float]:
    v = sorted(ms)
    return {"n": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95),
            "p99": percentile(v, 99), "max": v[-1]}


def line(name: str, f: dict[str, float]) -> str:
    return (f"  {name:<22} p50 {f['p50']:7.2f} ms  p95 {f['p95']:7.2f} ms  "
            f"p99 {f['p99']:7.2f} ms  max {f['max']:8.2f} ms  (n={f['n']:.0f})")


def run_one(database: str, args: argparse.Namespace) -> dict[str, Any]:
    from urllib.parse import quote

    with stack(source=args.source, keep=args.keep, prefix="bench-search-") as st:
        pg_cm = postgres_database() if database == "postgresql" else None
        pg = pg_cm.__enter__() if pg_cm else None
        try:
            if pg is not None:
                st.env["CONNECTOR_DATABASE_URL"] = pg.url
            cli(st.env, "migrate")
            integration = json.loads(cli(st.env, "integration", "add", "--name", "bench",
                                         "--channel-url", st.channel_url, "--json"))["id"]
            t0 = time.monotonic()
            if pg is None:
                fill_sqlite(st.db, integration, args.messages, args.agents, args.seed)
            else:
                asyncio.run(fill_postgresql(pg.url, integration, args.messages, args.agents,
                                            args.seed))
            fill_s = time.monotonic() - t0
            print(f"{database}: {args.messages:,} messages filled and indexed in {fill_s:.0f} s",
                  flush=True)
            st.connector = st.spawn("connector", [sys.executable, "-m", "connector.cli",
                                                  "serve"], st.port)
            wait_ready(st.connector)
            words = query_words(args.seed, args.queries)
            search = [f"/api/search?q={quote(w)}" for w in words]
            sup, agent = client_for(st, "sup"), client_for(st, "agent0")
            for c in (sup, agent):  # warm-up, not counted
                series(c, search[:20] + ["/api/session"] * 5)
            pids = {"connector": process_tree(st.connector.proc.pid)}
            if pg is not None:
                pids["postgres"] = pg.backend_pids()
            meter = CpuMeter(pids)
            meter.start()
            base_ms, base_cpu, _ = series(sup, ["/api/session"] * args.queries)
            sup_ms, sup_cpu, sup_found = series(sup, search)
            agent_ms, agent_cpu, agent_found = series(agent, search)
            meter.stop()
            wall = meter.seconds
            sup.close()
            agent.close()
        finally:
            if pg_cm is not None:
                pg_cm.__exit__(None, None, None)
    out = {
        "database": database, "messages": args.messages, "fill_seconds": round(fill_s, 1),
        "baseline_session": figures(base_ms), "supervisor": figures(sup_ms),
        "agent": figures(agent_ms),
        "results_per_query": {"supervisor": sup_found / len(search),
                              "agent": agent_found / len(search)},
        "client_cpu_ms_per_request": {
            "baseline": 1000 * base_cpu / len(base_ms), "supervisor": 1000 * sup_cpu / len(search),
            "agent": 1000 * agent_cpu / len(search)},
        "server_cpu_percent": meter.percent, "seconds": round(wall, 1),
    }
    print(f"{database}: one-word queries over {args.messages:,} messages "
          f"(target p95 <= {TARGET_P95_MS:.0f} ms)")
    print(line("GET /api/session", out["baseline_session"]))
    print(line("search, supervisor", out["supervisor"]))
    print(line("search, agent", out["agent"]))
    cpu = out["client_cpu_ms_per_request"]
    print(f"  results per query: supervisor {out['results_per_query']['supervisor']:.1f}, "
          f"agent {out['results_per_query']['agent']:.1f}; client CPU per request "
          f"{cpu['baseline']:.2f} / {cpu['supervisor']:.2f} / {cpu['agent']:.2f} ms; "
          f"server: {meter.line()}")
    ok = max(out["supervisor"]["p95"], out["agent"]["p95"]) <= TARGET_P95_MS
    print(f"  p95 target {'met' if ok else 'MISSED'}", flush=True)
    out["target_met"] = ok
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--agents", type=int, default=20)
    p.add_argument("--queries", type=int, default=300, help="queries per series")
    p.add_argument("--seed", type=int, default=14)
    add_run_options(p)
    args = p.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    report = {"args": args_json(args), "runs": [run_one(d, args) for d in databases]}
    if args.json:
        write_report(args.json, report)


if __name__ == "__main__":
    main()
