"""An admin's test messages to an integration's channel: recorded with what the channel
answered, listed beside the deliveries, kept `KEEP` then pruned by housekeeping."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.storage.db import utcnow
from connector.storage.models import ChannelTestSend

_ts = ChannelTestSend.__table__

KEEP = dt.timedelta(days=30)


async def record(conn: AsyncConnection, *, integration_id: str, user_id: int, recipient: str,
                 text: str, ok: bool, status: int | None, error: str | None,
                 duration_ms: float) -> None:
    await conn.execute(sa.insert(_ts).values(
        integration_id=integration_id, user_id=user_id, recipient_id=recipient, text=text,
        ok=ok, status=status, error=error, duration_ms=round(duration_ms, 1), at=utcnow()))


async def recent(conn: AsyncConnection, integration_id: str, limit: int = 20,
                 ) -> list[dict[str, Any]]:
    """The latest test sends, newest first: to whom, an excerpt, and the outcome (the
    error only where there is one)."""
    rows = (await conn.execute(sa.select(_ts).where(_ts.c.integration_id == integration_id)
                               .order_by(_ts.c.id.desc()).limit(limit))).all()
    return [{"id": r.id, "recipient": r.recipient_id, "excerpt": r.text[:120], "ok": r.ok,
             "status": r.status, "error": None if r.ok else r.error,
             "duration_ms": r.duration_ms, "at": r.at.isoformat()} for r in rows]


async def prune(conn: AsyncConnection, now: dt.datetime) -> None:
    await conn.execute(sa.delete(_ts).where(_ts.c.at < now - KEEP))
