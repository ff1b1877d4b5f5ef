"""Where the ingest time goes, in-process: the writer's work without HTTP.

    python3 bench/ingest_profile.py [--events 12000] [--batch 32] [--cprofile 25] [--smoke]

Runs what the server and the writer process (connector/ingest/process.py)
do for each event, on a fresh SQLite file in this process: validate the
body, ship it and rebuild it as the writer does, then `apply.write` in
one transaction per batch of `--batch`, with the
same `message_received` bodies as bench/ingest.lua (1,000 end users, 5%
need_help). Prints per event: the CPU of each step, and the write's CPU
(thread time, so fsync waits are not counted) and wall time. With --cprofile N, the
N functions with the most own time. Use --source to profile another checkout.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lib.smartly import encode, turn

HERE = Path(__file__).resolve().parent


def bodies(n: int, users: int, help_percent: float, salt: str) -> list[bytes]:
    """Unique bodies shaped like bench/ingest.lua's."""
    rng = random.Random(salt)
    out = []
    for i in range(n):
        user = f"user-{rng.randrange(users)}"
        help_ = rng.random() * 100 < help_percent
        ref = f"{salt}-{i}"
        out.append(encode(turn(
            user, f"Bonjour, ma commande {ref} n'est pas arrivée", need_help=help_,
            answer="Nous allons vérifier si un agent est disponible" if help_
            else "Votre commande est en cours de livraison",
            ref=ref, total_processing_time=round(0.2 + i / 1e7, 7))))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--events", type=int, default=12000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--cprofile", type=int, default=0, metavar="N")
    p.add_argument("--source", type=Path, default=HERE.parent)
    p.add_argument("--smoke", action="store_true", help="400 events, to check it runs")
    args = p.parse_args(argv)
    if args.smoke:
        args.events = 400
    sys.path.insert(0, str(args.source))

    import orjson
    import sqlalchemy as sa

    from connector.ingest import apply
    from connector.ingest.process import shipped
    try:
        from connector.ingest.inbound import Inbound as from_wire
        from connector.sources import SOURCES
        parse_smartly = SOURCES["smartly"].parse
    except ImportError:  # a checkout from before sources (--source)
        from connector.ingest.inbound import parse_smartly  # type: ignore[attr-defined,no-redef]
        from connector.ingest.process import _inbound as from_wire  # type: ignore[attr-defined,no-redef]
    from connector.settings import Settings
    from connector.storage import migrate
    from connector.storage.db import create_sync_engine, utcnow
    from connector.storage.models import Integration

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp}/bench.db")
        migrate.upgrade(settings)
        import os, sqlite3 as _s
        _c = _s.connect(f"{tmp}/bench.db")
        for _st in os.environ.get("EXP_SQL", "").split(";"):
            _st.strip() and _c.execute(_st)
        _c.commit(); _c.close()
        engine = create_sync_engine(settings)
        with engine.begin() as conn:
            conn.execute(sa.insert(Integration.__table__).values(
                id="bench", name="bench", channel_url="http://127.0.0.1:9/", verify_token="t",  # noqa: S106
                key_hash="0" * 64, created_at=utcnow()))
        raws = [r.decode() for r in bodies(args.events, args.users, 5.0, "profile")]
        window = dt.timedelta(hours=24)

        c0 = time.thread_time()
        parsed = [parse_smartly("bench", orjson.loads(raw), raw.encode()) for raw in raws]
        c1 = time.thread_time()
        wire = [shipped(i) for i in parsed]
        c2 = time.thread_time()
        inbounds = [from_wire(*w) for w in orjson.loads(orjson.dumps(wire))]
        c3 = time.thread_time()
        validate, ship, rebuild = ((b - a) / len(raws) * 1e6
                                   for a, b in ((c0, c1), (c1, c2), (c2, c3)))

        def write(items: list[Any]) -> None:
            for i in range(0, len(items), args.batch):
                with engine.begin() as conn:
                    apply.write(conn, items[i:i + args.batch], window)

        warm = len(inbounds) // 4
        write(inbounds[:warm])  # tables and caches warm, conversations exist
        measured = inbounds[warm:]
        profiler = cProfile.Profile() if args.cprofile else None
        t0, c0 = time.perf_counter(), time.thread_time()
        if profiler:
            profiler.enable()
        write(measured)
        if profiler:
            profiler.disable()
        wall = (time.perf_counter() - t0) / len(measured) * 1e6
        cpu = (time.thread_time() - c0) / len(measured) * 1e6
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM inbound_event").scalar()
            opened = conn.exec_driver_sql("SELECT count(*) FROM ticket").scalar()
        engine.dispose()

    print(f"{len(measured)} events measured after {warm} of warm-up, batches of {args.batch}; "
          f"{stored} stored, {opened} tickets opened")
    print(f"server: validate (orjson + pydantic + sha256): {validate:6.1f} us CPU per event")
    print(f"server: ship to the writer (fields only):      {ship:6.1f} us CPU per event")
    print(f"writer: rebuild from the wire (orjson):        {rebuild:6.1f} us CPU per event")
    print(f"writer: ingest.apply.write + commit:   {cpu:7.1f} us CPU per event, "
          f"{wall:.1f} us wall{' (under cProfile)' if profiler else ''}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
    return 0 if stored == args.events else 1


if __name__ == "__main__":
    sys.exit(main())
