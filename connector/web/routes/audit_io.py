"""The audit trail's answers (`api_audit`) and an integration's deletion
(`api_integration_state`), for `/api/openapi.json`, beside `responses` (kept small)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from connector.web.routes.responses import Closed


class AuditActor(Closed):
    id: int | None = Field(description="The staff member's id; null for the command line, "
                                       "the system or a failed sign-in")
    username: str | None = Field(description="Their username then; `cli` for the command "
                                             "line; the name tried for a failed sign-in")
    role: str | None


class AuditTarget(Closed):
    type: str = Field(description="user, integration, ticket, message, webhook, end_user")
    id: str | None


class AuditEvent(Closed):
    id: int
    at: dt.datetime
    actor: AuditActor
    address: str | None = Field(description="The client's address; `local` for the "
                                            "command line")
    action: str = Field(description="user.created, integration.key_rotated, ... "
                                    "(docs/operations.md, 'Audit trail')")
    target: AuditTarget | None
    changes: dict[str, Any] | None = Field(
        description='{"field": {"before", "after"}}; a secret only as {"changed": true}')
    request_id: str | None = Field(description="The request's X-Request-Id, as in its "
                                               "log lines")


class AuditPage(Closed):
    events: list[AuditEvent] = Field(description="Newest first")
    next_before: int | None = Field(description="`before` for the next page; null on the "
                                                "last")


class IntegrationDeletion(Closed):
    id: str
    name: str
    conversations: int = Field(description="Conversations deleted with it")


class IntegrationDeleted(Closed):
    deleted: IntegrationDeletion
