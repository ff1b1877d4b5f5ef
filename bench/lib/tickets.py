"""Tickets for the benchmarks' end users: opened by need_help turns, claimed by agents."""

from __future__ import annotations

import json

from .rawhttp import RawPool, http_request
from .smartly import encode, turn
from .stack import Stack
from .staff import Session


async def open_tickets(st: Stack, users: list[str]) -> list[int]:
    """One need_help turn per end user: each gets an open ticket. Their ids, in order."""
    pool = await RawPool(st.port, 16).open()
    try:
        reqs = [http_request("POST", st.hook_path, st.port,
                             encode(turn(u, "Je voudrais parler à un conseiller", need_help=True,
                                         answer="un conseiller va vous contacter",
                                         ref=f"open-{u}")))
                for u in users]
        out = await pool.run_all(reqs)
    finally:
        await pool.close()
    ids = []
    for status, body in out:
        if status != 200:
            log = st.connector.log.read_text(errors="replace")[-3000:] if st.connector else ""
            raise SystemExit(f"opening tickets: HTTP {status} {body[:200]!r}\n{log}")
        result = json.loads(body)
        if result.get("ticket_id") is None:
            raise SystemExit(f"opening tickets: no ticket in {result}")
        ids.append(result["ticket_id"])
    return ids


def claim(st: Stack, session: Session, ticket: int) -> None:
    import httpx

    r = httpx.post(f"{st.base}/api/tickets/{ticket}/claim",
                   headers={"X-CSRF-Token": session.csrf, "Origin": st.base},
                   cookies={"connector_session": session.cookie}, timeout=60)
    if r.status_code != 200:
        raise SystemExit(f"claim {ticket}: {r.status_code} {r.text}")
