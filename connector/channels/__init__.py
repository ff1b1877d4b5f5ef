"""Channels: where replies go out (see `base.Channel`).

`Channels.for_integration` picks the channel of an integration by its kind: the
Chatlayer Webhook channel (`smartly`), or Chatlayer's conversation actions API
(`chatlayer-offloading`, configured from the integration as cached by
`accounts.integrations.IntegrationCache`).
"""

from __future__ import annotations

from typing import Any

import httpx

from connector.channels.base import Channel, Envelope, Outcome, idempotency_key
from connector.channels.chatlayer_actions import ChatlayerActions
from connector.channels.chatlayer_webhook import ChatlayerWebhook
from connector.channels.memory import MemoryChannel
from connector.outbound import signing

__all__ = ["Channel", "Channels", "ChatlayerActions", "ChatlayerWebhook", "Envelope",
           "MemoryChannel", "Outcome", "idempotency_key"]


class Channels:
    """The channels of this process, sharing one HTTP client."""

    def __init__(self, client: httpx.AsyncClient, timeout: float, integrations: Any) -> None:
        self.client = client
        self.timeout = timeout
        #: `IntegrationCache`: an integration's kind and API settings, trusted 1 s.
        self.integrations = integrations
        self.chatlayer_webhook = ChatlayerWebhook(client, timeout)

    async def for_integration(self, integration_id: str) -> Channel:
        integration = await self.integrations.get(integration_id)
        if integration is not None and integration.kind == "chatlayer-offloading":
            if not integration.bot_id:  # bound by an event since it was cached, maybe
                integration = (await self.integrations.get(integration_id, fresh=True)
                               or integration)
            return ChatlayerActions(self.client, self.timeout, integration)
        if integration is not None and integration.signing_secret:
            # Signed with the integration's secrets in use (two during a rotation's grace).
            return ChatlayerWebhook(self.client, self.timeout, signing.in_use(
                integration.signing_secret, integration.previous_signing_secret,
                integration.previous_signing_secret_expires_at))
        return self.chatlayer_webhook
