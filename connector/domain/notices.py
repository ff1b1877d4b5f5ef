"""What the end user is told while a human takes over, in the integration's words.

Per integration, each optional (None or empty: nothing is sent): `queue_message`
when the handover starts, `assigned_message` when an agent takes the
conversation, `offline_message` instead of the queue message outside business
hours or while no agent is online. Each is a bot message in the transcript
delivered through the outbox, with the same guarantees as an agent's reply.
"""

from __future__ import annotations

from typing import Any

from connector.storage.store import SyncTx


def queued_sync(tx: SyncTx, ticket: dict[str, Any]) -> None:
    """The handover of `ticket` (just opened, in the ingest transaction) started."""


def assigned_sync(tx: SyncTx, ticket: dict[str, Any], agent_id: int) -> None:
    """`ticket` was just assigned to `agent_id` (routing, a claim, a transfer)."""
