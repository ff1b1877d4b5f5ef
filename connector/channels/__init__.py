"""Channels: where replies go out (see `base.Channel`).

`Channels.for_integration` picks the channel of an integration; today every
integration has a Chatlayer Webhook channel.
"""

from __future__ import annotations

import httpx

from connector.channels.base import Channel, Envelope, Outcome, idempotency_key
from connector.channels.chatlayer_webhook import ChatlayerWebhook
from connector.channels.memory import MemoryChannel

__all__ = ["Channel", "Channels", "ChatlayerWebhook", "Envelope", "MemoryChannel", "Outcome",
           "idempotency_key"]


class Channels:
    """The channels of this process, sharing one HTTP client."""

    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        self.chatlayer_webhook = ChatlayerWebhook(client, timeout)

    def for_integration(self, integration_id: str) -> Channel:
        return self.chatlayer_webhook
