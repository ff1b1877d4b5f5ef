"""Admin API: event webhooks of the customer's own systems (`domain.webhooks`).

Thin: the URL's outbound check (`outbound.check_url_resolved`, before the
transaction: it waits on DNS), then the domain's one write. Subscriptions changed
here take effect in this process at once (`webhooks.forget`), elsewhere within
`webhooks.CACHE_SECONDS`.
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector import outbound
from connector.accounts.auth import Principal
from connector.domain import audit, webhooks
from connector.web.routes.deps import api, audit_actor, body, int_param
from connector.web.routes.webhook_models import RotateSecretIn, WebhookIn, WebhookPatch


async def _checked_url(request: Request, url: str) -> str:
    return await outbound.check_url_resolved(url, "url",
                                             request.app.state.settings.outbound_networks)


#: A subscription's fields the audit trail records the changes of (never its secret).
AUDITED = ("url", "events", "description", "disabled")


def _changed(request: Request) -> None:
    webhooks.forget()
    request.app.state.webhook_worker.wake()


@api("admin")
async def list_webhooks(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.read() as conn:
        return JSONResponse({"webhooks": await webhooks.list_all(conn)})


@api("admin")
async def create_webhook(request: Request, principal: Principal) -> Response:
    data = await body(request, WebhookIn)
    url = await _checked_url(request, data.url)
    async with request.app.state.store.transaction() as tx:
        created = await webhooks.create(tx.conn, url=url, events=list(data.events),
                                        description=data.description)
        await audit.record(tx, audit_actor(request, principal), "webhook.created", "webhook",
                           created.subscription["id"],
                           audit.diff({}, created.subscription, AUDITED))
    _changed(request)
    return JSONResponse({**created.subscription, "secret": created.secret}, 201)


@api("admin")
async def get_webhook(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.read() as conn:
        return JSONResponse(await webhooks.get(conn, int_param(request, "id")))


@api("admin")
async def patch_webhook(request: Request, principal: Principal) -> Response:
    data = await body(request, WebhookPatch)
    changes = data.model_dump(exclude_unset=True)
    if data.url is not None:
        changes["url"] = await _checked_url(request, data.url)
    if data.events is not None:
        changes["events"] = list(data.events)
    async with request.app.state.store.transaction() as tx:
        before = await webhooks.get(tx.conn, int_param(request, "id"))
        row = await webhooks.update(tx.conn, int_param(request, "id"), **changes)
        if diff := audit.diff(before, row, AUDITED):
            await audit.record(tx, audit_actor(request, principal), "webhook.updated",
                               "webhook", row["id"], diff)
    _changed(request)
    return JSONResponse(row)


@api("admin")
async def delete_webhook(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.transaction() as tx:
        before = await webhooks.get(tx.conn, int_param(request, "id"))
        await webhooks.delete(tx.conn, int_param(request, "id"))
        await audit.record(tx, audit_actor(request, principal), "webhook.deleted", "webhook",
                           before["id"], audit.diff(before, {}, AUDITED))
    _changed(request)
    return JSONResponse({"status": "deleted"})


@api("admin")
async def rotate_secret(request: Request, principal: Principal) -> Response:
    data = await body(request, RotateSecretIn, optional=True)
    grace = (data.grace_seconds if data.grace_seconds is not None
             else request.app.state.settings.key_grace_seconds)
    async with request.app.state.store.transaction() as tx:
        created = await webhooks.rotate_secret(tx.conn, int_param(request, "id"),
                                               dt.timedelta(seconds=grace))
        await audit.record(tx, audit_actor(request, principal), "webhook.secret_rotated",
                           "webhook", created.subscription["id"],
                           {"secret": {"changed": True}, "grace_seconds": grace})
    return JSONResponse({**created.subscription, "secret": created.secret})


@api("admin")
async def send_test(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.transaction() as tx:
        delivery = await webhooks.send_test(tx, int_param(request, "id"))
    return JSONResponse(delivery, 202)


@api("admin")
async def deliveries(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.read() as conn:
        subscription = await webhooks.get(conn, int_param(request, "id"))
        return JSONResponse({"deliveries": await webhooks.deliveries(conn, subscription["id"])})


@api("admin")
async def resend(request: Request, principal: Principal) -> Response:
    async with request.app.state.store.transaction() as tx:
        delivery = await webhooks.resend(tx, int_param(request, "id"))
    return JSONResponse(delivery)


routes = [
    Route("/api/webhooks", list_webhooks, methods=["GET"]),
    Route("/api/webhooks", create_webhook, methods=["POST"]),
    Route("/api/webhooks/{id:int}", get_webhook, methods=["GET"]),
    Route("/api/webhooks/{id:int}", patch_webhook, methods=["PATCH"]),
    Route("/api/webhooks/{id:int}", delete_webhook, methods=["DELETE"]),
    Route("/api/webhooks/{id:int}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/api/webhooks/{id:int}/test", send_test, methods=["POST"]),
    Route("/api/webhooks/{id:int}/deliveries", deliveries, methods=["GET"]),
    Route("/api/webhook-deliveries/{id:int}/resend", resend, methods=["POST"]),
]
