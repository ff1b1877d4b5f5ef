"""Admin API: integrations (bot endpoints) and users."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts import integration_state, integrations, users
from connector.accounts.auth import Principal
from connector.accounts.integrations import Created
from connector.accounts.security import hash_password
from connector.channels import Envelope, idempotency_key
from connector.delivery.attempt import send_once
from connector.domain import agents, audit, outbox, test_sends
from connector.realtime.hub import CLOSE_ROLE_CHANGED, CLOSE_UNAUTHORIZED
from connector.storage.models import Integration, User
from connector.web.http import HTTPError
from connector.web.routes.deps import api, audit_actor, body
from connector.web.routes.schemas import (
    IntegrationIn,
    IntegrationPatch,
    RotateIn,
    TestMessageIn,
    UserIn,
    UserPatch,
)


def integration_out(request: Request, row: Integration, key: str | None = None,
                    signing_secret: str | None = None) -> dict[str, Any]:
    """`integrations.describe`; `key` and `signing_secret` only at creation or their
    rotation (shown once)."""
    return integrations.describe(row, request.app.state.settings.public_url, key,
                                 signing_secret)


async def _integration(request: Request) -> Integration:
    async with request.app.state.store.read() as conn:
        row = await integrations.get(conn, request.path_params["id"])
    if row is None:
        raise HTTPError(404, "not_found", "no such integration")
    return row


@api("admin")
async def list_integrations(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.read() as conn:
        rows = await integrations.list_all(conn)
    return JSONResponse({"integrations": [integration_out(request, r) for r in rows]})


@api("admin")
async def create_integration(request: Request, principal: Principal) -> Response:
    data = await body(request, IntegrationIn)
    await _reachable(request, data.model_dump(exclude_unset=True))
    async with request.app.state.store.transaction() as tx:
        created = await integrations.create(tx.conn, **data.model_dump(exclude_unset=True))
        await audit.record(tx, audit_actor(request, principal), "integration.created",
                           "integration", created.integration.id,
                           integration_state.audit_fields({}, created.integration))
    return JSONResponse(integration_out(request, created.integration, created.key,
                                        created.integration.signing_secret), 201)


@api("admin")
async def get_integration(request: Request, principal: Principal) -> Response:
    return JSONResponse(integration_out(request, await _integration(request)))


@api("admin")
async def patch_integration(request: Request, principal: Principal) -> Response:
    data = await body(request, IntegrationPatch)
    await _integration(request)
    await _reachable(request, data.model_dump(exclude_unset=True))
    async with request.app.state.store.transaction() as tx:
        before = await integrations.get(tx.conn, request.path_params["id"])
        row = await integrations.update(tx.conn, request.path_params["id"],
                                        **data.model_dump(exclude_unset=True))
        assert before is not None and row is not None
        changes = integration_state.audit_fields(before, row)
        if changes:
            await audit.record(tx, audit_actor(request, principal), "integration.updated",
                               "integration", row.id, changes)
    request.app.state.integrations.forget(row.id)
    return JSONResponse(integration_out(request, row))


@api("admin")
async def rotate_key(request: Request, principal: Principal) -> Response:
    created = await _rotate(request, principal, integrations.rotate_key, "key")
    return JSONResponse(integration_out(request, created.integration, created.key))


@api("admin")
async def rotate_signing_secret(request: Request, principal: Principal) -> Response:
    """A new signing secret, shown once; the previous one signs too for `grace_seconds`."""
    created = await _rotate(request, principal, integrations.rotate_signing_secret,
                            "signing_secret")
    return JSONResponse(integration_out(request, created.integration,
                                        signing_secret=created.key))


async def _rotate(request: Request, principal: Principal,
                  rotate: Callable[[Any, str, dt.timedelta], Awaitable[Created | None]],
                  secret: str) -> Created:
    """Rotate the integration's `secret` ("key" or "signing_secret") with `rotate`, the
    previous one still valid for the body's `grace_seconds` (or the default); audited as
    `integration.{secret}_rotated`, and forgotten by this instance's cache."""
    data = await body(request, RotateIn, optional=True)
    await _integration(request)
    grace = (data.grace_seconds if data.grace_seconds is not None
             else request.app.state.settings.key_grace_seconds)
    async with request.app.state.store.transaction() as tx:
        created = await rotate(tx.conn, request.path_params["id"], dt.timedelta(seconds=grace))
        assert created is not None
        await audit.record(tx, audit_actor(request, principal), f"integration.{secret}_rotated",
                           "integration", created.integration.id,
                           {secret: {"changed": True}, "grace_seconds": grace})
    request.app.state.integrations.forget(created.integration.id)
    return created


async def _reachable(request: Request, fields: dict[str, Any]) -> None:
    """The URLs among `fields` lead where we may connect (before the transaction: DNS)."""
    await integrations.check_reachable(request.app.state.settings.outbound_networks, fields)


@api("admin")
async def deliveries(request: Request, principal: Principal) -> Response:
    row = await _integration(request)
    async with request.app.state.store.read() as conn:
        recent = await outbox.recent(conn, row.id, limit=100)
        tests = await test_sends.recent(conn, row.id)
    return JSONResponse({"deliveries": recent, "tests": tests})


@api("admin")
async def test_message(request: Request, principal: Principal) -> Response:
    """Send one message straight to the channel and report what it answered."""
    data = await body(request, TestMessageIn)
    row = await _integration(request)
    outcome, duration_ms = await send_once(
        await request.app.state.channels.for_integration(row.id),
        Envelope(row.channel_url, row.verify_token, data.recipient, {"text": data.text},
                 idempotency_key()))
    result: dict[str, Any] = {"ok": outcome.state == "delivered", "status": outcome.status}
    if outcome.transport_error is not None:
        result["error"] = outcome.transport_error
    result["duration_ms"] = round(duration_ms, 1)
    async with request.app.state.store.transaction() as tx:
        await test_sends.record(
            tx.conn, integration_id=row.id, user_id=principal.user_id, recipient=data.recipient,
            text=data.text, ok=result["ok"], status=outcome.status,
            error=outcome.transport_error or outcome.error, duration_ms=duration_ms)
    return JSONResponse(result)


def user_out(user: User) -> dict[str, Any]:
    return {**agents.describe(user), "disabled": user.disabled,
            "must_change_password": user.must_change_password,
            "created_at": user.created_at.isoformat()}


@api("admin")
async def list_users(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.read() as conn:
        rows = await users.list_all(conn)
    return JSONResponse({"users": [user_out(u) for u in rows]})


@api("admin")
async def create_user(request: Request, principal: Principal) -> Response:
    data = await body(request, UserIn)
    users.check_username(data.username)
    users.check_role(data.role)
    password_hash = await run_in_threadpool(hash_password, data.password)
    async with request.app.state.store.transaction() as tx:
        user = await users.create(tx.conn, data.username, data.password, data.role,
                                  password_hash=password_hash,
                                  must_change_password=data.must_change_password)
        await audit.record(tx, audit_actor(request, principal), "user.created", "user",
                           user.id, audit.diff({}, user.model_dump(),
                                               ("username", "role", "must_change_password")))
    return JSONResponse(user_out(user), 201)


@api("admin")
async def patch_user(request: Request, principal: Principal) -> Response:
    data = await body(request, UserPatch)
    user_id = request.path_params["id"]
    password_hash = None
    if data.role is not None:
        users.check_role(data.role)
    if data.password is not None:
        password_hash = await run_in_threadpool(hash_password, data.password)
    async with request.app.state.store.transaction() as tx:
        before, user = await users.change(tx.conn, principal.user_id, user_id, role=data.role,
                                          disabled=data.disabled, password_hash=password_hash,
                                          routing=data.routing(),
                                          must_change_password=data.must_change_password)
        for action, changes in audit.user_actions(before.model_dump(), user.model_dump(),
                                                  password_hash is not None):
            await audit.record(tx, audit_actor(request, principal), action, "user", user_id,
                               changes)
    request.app.state.router.wake()  # capacity or skills may let a ticket go
    hub = request.app.state.hub
    if data.disabled or data.must_change_password or password_hash is not None:
        hub.close_user(user_id, CLOSE_UNAUTHORIZED, "session ended")
    elif data.role is not None and data.role != before.role:
        # HTTP reads the role on every request; a socket fixed it at the handshake.
        hub.close_user(user_id, CLOSE_ROLE_CHANGED, "role changed; reconnect")
    return JSONResponse(user_out(user))


routes = [
    Route("/api/integrations", list_integrations, methods=["GET"]),
    Route("/api/integrations", create_integration, methods=["POST"]),
    Route("/api/integrations/{id}", get_integration, methods=["GET"]),
    Route("/api/integrations/{id}", patch_integration, methods=["PATCH"]),
    Route("/api/integrations/{id}/rotate-key", rotate_key, methods=["POST"]),
    Route("/api/integrations/{id}/rotate-signing-secret", rotate_signing_secret,
          methods=["POST"]),
    Route("/api/integrations/{id}/deliveries", deliveries, methods=["GET"]),
    Route("/api/integrations/{id}/test", test_message, methods=["POST"]),
    Route("/api/users", list_users, methods=["GET"]),
    Route("/api/users", create_user, methods=["POST"]),
    Route("/api/users/{id:int}", patch_user, methods=["PATCH"]),
]
