"""The end-user erasure's request body and answer (`api_end_users`), for validation and
for `/api/openapi.json`, beside `schemas` and `responses` (kept small)."""

from __future__ import annotations

from pydantic import Field

from connector.web.routes.responses import Closed
from connector.web.routes.schemas import Strict


class EraseIn(Strict):
    integration: str = Field(min_length=1, max_length=32, description="The integration's id")
    end_user: str = Field(min_length=1, max_length=500,
                          description="The end user's id as the bot platform sends it")


class Erased(Closed):
    """What was erased (`domain.erasure.Erased`); the end user id itself is never echoed."""

    integration: str
    pseudonym: str | None = Field(description="The conversation's new end user id; null "
                                              "when nothing of theirs had a conversation")
    messages: int = Field(description="Messages whose text, body and context were erased")
    tickets: int = Field(description="Their tickets, kept with anonymous timings")
    raw_events: int = Field(description="Raw webhook bodies deleted")
    deliveries: int = Field(description="Deliveries whose sent message was erased")
    test_sends: int
    stream_events: int
    webhook_deliveries: int
    idempotent_answers: int
