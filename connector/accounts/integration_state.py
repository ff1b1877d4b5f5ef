"""An integration disabled, enabled again, or deleted (with or without its
conversations), each recorded in the audit trail in the transaction that does it.

Disabled: its webhooks are refused (`web.routes.hooks`: 403 `integration_disabled`,
nothing stored) on every instance within `integrations.CACHE_SECONDS`, and its
queued replies stay queued, paused, until it is enabled again (the delivery worker
and `domain.outbox` skip them); agents may still read and answer its tickets.

Deleted: refused (`Conflict`) while it has conversations, unless they go too; then
they are deleted a small batch per transaction (`domain.conversation_delete`), the
integration disabled first so nothing new arrives meanwhile, and the integration's
row with its raw events, dedupe keys and test sends last, with its audit row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connector.accounts import integrations
from connector.domain import audit, conversation_delete
from connector.domain.errors import Conflict, NotFound
from connector.storage.models import ChannelTestSend, DedupeKey, InboundEvent, Integration

_t = Integration.__table__
_events = InboundEvent.__table__

#: Conversations (or raw events) deleted per transaction.
BATCH = 200

#: An integration's fields as the audit trail records their changes (secrets only as
#: {"changed": true}, `audit.SECRETS`).
AUDITED = ("name", "kind", "channel_url", "api_url", "api_token", "bot_id", "handback_action",
           "verify_token", "queue_message", "assigned_message", "offline_message",
           "business_hours", "first_response_target_seconds", "survey_question",
           "survey_labels", "disabled")

Begin = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


def audit_fields(before: Integration | Mapping[str, Any],
                 after: Integration) -> dict[str, Any]:
    """The audited fields that differ between `before` ({} at creation) and `after`."""
    old = before.model_dump() if isinstance(before, Integration) else before
    return audit.diff(old, after.model_dump(), AUDITED)


async def set_disabled(conn: AsyncConnection, integration_id: str, disabled: bool,
                       actor: audit.Actor) -> Integration:
    """Disable or enable the integration (`integration.disabled` / `.enabled` recorded
    when it changes); NotFound when there is none."""
    before = await integrations.get(conn, integration_id)
    if before is None:
        raise NotFound("no such integration")
    if before.disabled == disabled:
        return before
    await conn.execute(sa.update(_t).where(_t.c.id == integration_id)
                       .values(disabled=disabled))
    action = "integration.disabled" if disabled else "integration.enabled"
    await audit.record(conn, actor, action, "integration", integration_id,
                       {"disabled": {"before": before.disabled, "after": disabled}})
    return before.model_copy(update={"disabled": disabled})


async def delete(begin: Begin, integration_id: str, actor: audit.Actor, *,
                 with_conversations: bool = False, batch: int = BATCH) -> dict[str, Any]:
    """Delete the integration; what was deleted (`{"id", "name", "conversations"}`).

    `begin()` opens one write transaction (`Store.begin`, or an engine's `begin`).
    Without `with_conversations`, Conflict when it has any (nothing is changed).
    """
    async with begin() as conn:
        row = await integrations.get(conn, integration_id)
        if row is None:
            raise NotFound("no such integration")
        total = await conversation_delete.count(conn, integration_id)
        if total and not with_conversations:
            raise Conflict(f"the integration has {total} conversation(s): delete them too "
                           "(with_conversations) or keep it disabled", conversations=total)
        if total:  # nothing new arrives while its conversations go
            await conn.execute(sa.update(_t).where(_t.c.id == integration_id)
                               .values(disabled=True))
    deleted = 0
    while total:
        async with begin() as conn:
            ids = await conversation_delete.of_integration(conn, integration_id, batch)
            deleted += await conversation_delete.delete(conn, ids)
        if len(ids) < batch:
            break
    while True:  # raw events of conversations gone (or of none)
        async with begin() as conn:
            some = sa.select(_events.c.id).where(
                _events.c.integration_id == integration_id).limit(batch)
            ids = list((await conn.execute(some)).scalars())
            if ids:
                await conn.execute(sa.delete(_events).where(_events.c.id.in_(ids)))
        if len(ids) < batch:
            break
    async with begin() as conn:
        left = await conversation_delete.count(conn, integration_id)
        if left and not with_conversations:  # one arrived since the check: refused still
            raise Conflict(f"the integration has {left} conversation(s): delete them too "
                           "(with_conversations) or keep it disabled", conversations=left)
        if left:  # arrived before the disable took effect everywhere: once more
            deleted += await conversation_delete.delete(
                conn, await conversation_delete.of_integration(conn, integration_id, left))
        await conn.execute(sa.delete(_events).where(_events.c.integration_id == integration_id))
        for table in (DedupeKey.__table__, ChannelTestSend.__table__):
            await conn.execute(sa.delete(table).where(table.c.integration_id == integration_id))
        await conn.execute(sa.delete(_t).where(_t.c.id == integration_id))
        await audit.record(conn, actor, "integration.deleted", "integration", integration_id,
                           {"name": {"before": row.name},
                            "conversations": {"before": deleted}})
    return {"id": integration_id, "name": row.name, "conversations": deleted}


