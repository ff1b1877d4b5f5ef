"""Store events in a benchmark's database before it is measured, through the connector's own
write path (the parse of the Smartly source, then `ingest.apply.write`), without HTTP.

    CONNECTOR_DATABASE_URL=... python3 bench/prefill.py --integration ID --events 1000000

Run by bench/ingest.py (`--stored`) with the stack's environment, before the
server starts (SQLite) or while it is idle. The events are bot turns of
`--past-users` end users of the past ("past-0", ...), with every field of the
documented `message_received` example, so every table a turn touches grows as it
would in production: inbound events, messages (and their full-text index),
conversations, dedupe keys. Prints one line: `PREFILL events=N seconds=S`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from collections.abc import Iterator
from typing import Any

from lib.smartly import encode, turn

BATCH = 256


def bodies(n: int, start: int, past_users: int) -> Iterator[bytes]:
    for i in range(start, start + n):
        ref = f"prefill-{i}"
        yield encode(turn(f"past-{i % past_users}", f"Bonjour, ma commande {ref} n'est pas arrivée",
                          answer="Votre commande est en cours de livraison", ref=ref,
                          total_processing_time=0.269))


def batches(integration: str, n: int, start: int, past_users: int) -> Iterator[list[Any]]:
    import orjson

    from connector.sources import SOURCES

    parse = SOURCES["smartly"].parse
    batch: list[Any] = []
    for raw in bodies(n, start, past_users):
        batch.append(parse(integration, orjson.loads(raw), raw))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill_sqlite(settings: Any, integration: str, n: int, start: int, past_users: int) -> None:
    from connector.ingest import apply
    from connector.storage.db import create_sync_engine

    window = dt.timedelta(seconds=settings.dedupe_window_seconds)
    engine = create_sync_engine(settings)
    with engine.connect() as conn:
        for batch in batches(integration, n, start, past_users):
            with conn.begin():
                apply.write(conn, batch, window)
    engine.dispose()


async def fill_postgresql(settings: Any, integration: str, n: int, start: int,
                          past_users: int) -> None:
    from connector.ingest import apply
    from connector.storage.db import create_engine

    window = dt.timedelta(seconds=settings.dedupe_window_seconds)
    engine = create_engine(settings)
    try:
        for batch in batches(integration, n, start, past_users):
            async with engine.begin() as conn:
                await conn.run_sync(apply.write, batch, window)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--integration", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--start", type=int, default=0,
                   help="number of the first event (events already prefilled)")
    p.add_argument("--past-users", type=int, default=20_000)
    args = p.parse_args(argv)

    from connector.settings import Settings

    settings = Settings()
    t0 = time.perf_counter()
    if settings.is_sqlite:
        fill_sqlite(settings, args.integration, args.events, args.start, args.past_users)
    else:
        asyncio.run(fill_postgresql(settings, args.integration, args.events, args.start,
                                    args.past_users))
    print(f"PREFILL events={args.events} seconds={time.perf_counter() - t0:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
