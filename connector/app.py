"""`create_app(settings)`: the ASGI application.

Every long-lived resource is made in the one lifespan below and reached
through `app.state`; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from connector import outbound
from connector.accounts.integrations import IntegrationCache
from connector.channels import Channels
from connector.delivery.webhook_worker import WebhookWorker
from connector.delivery.worker import DeliveryWorker
from connector.domain import audit_log, idempotency, retention, test_sends
from connector.domain import webhooks as event_webhooks
from connector.ingest.batcher import IngestWriter
from connector.logs import AccessLogMiddleware
from connector.metrics import Metrics, cluster, exposition
from connector.realtime import stream
from connector.realtime.bus import create_bus
from connector.realtime.hub import Hub
from connector.routing.router import Router
from connector.routing.timers import Sweeper
from connector.settings import Settings
from connector.sources import SOURCES, Source
from connector.storage import outage
from connector.storage.db import create_engine, create_sync_engine, utcnow
from connector.storage.models import DedupeKey
from connector.storage.sqlite import inuse
from connector.storage.sqlite.checkpoint import Checkpointer
from connector.storage.store import Store
from connector.web import lanes, unavailable
from connector.web.headers import SecurityHeadersMiddleware
from connector.web.routes import (
    api_admin,
    api_audit,
    api_auth,
    api_canned,
    api_end_users,
    api_integration_state,
    api_reports,
    api_search,
    api_tickets,
    api_webhooks,
    fallback,
    health,
    hooks,
    openapi,
    ws,
)

log = logging.getLogger("connector")


def create_app(settings: Settings, sources: Mapping[str, Source] = SOURCES) -> Starlette:
    """The app on `settings`, taking webhook events from `sources`."""
    webhooks = hooks.webhooks(sources)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Held while the app runs: `connector restore` is refused meanwhile.
        in_use = inuse.Held(settings.sqlite_path) if settings.sqlite_path else None
        engine = create_engine(settings)
        bus = create_bus(settings.bus_url)
        await bus.connect()
        # Every outbound call goes through it: checked addresses, no redirects (issue 15).
        client = outbound.client(settings.outbound_networks,
                                 timeout=settings.delivery_timeout_seconds,
                                 max_connections=settings.delivery_concurrency * 2)
        store = Store(engine, bus, sync_engine=(create_sync_engine(settings)
                                                if settings.is_sqlite else None))
        integrations = IntegrationCache(engine)
        channels = Channels(client, settings.delivery_timeout_seconds, integrations)
        metrics = Metrics()  # this app's own registry (several apps may share a process)
        worker = DeliveryWorker(store, channels.for_integration, settings, metrics)
        webhook_worker = WebhookWorker(store, client, settings)

        def wake_workers() -> None:  # a commit queued a reply or an event webhook
            worker.wake()
            webhook_worker.wake()

        store.on_delivery = wake_workers
        store.hand_deliveries_to(worker.hand_over, settings.delivery_lease_seconds)
        writer = IngestWriter(store, settings, metrics)
        checkpointer = Checkpointer(settings.sqlite_path) if settings.sqlite_path else None
        app.state.settings = settings
        app.state.engine = engine
        app.state.bus = bus
        app.state.store = store
        app.state.channels = channels
        app.state.delivery = worker
        app.state.webhook_worker = webhook_worker
        app.state.ingest = writer
        app.state.integrations = integrations
        app.state.loop = asyncio.get_running_loop()
        hub = Hub(store, bus, settings)
        app.state.hub = hub
        router = Router(store, settings)
        hub.listeners.append(router.saw)
        hub.listeners.append(webhook_worker.saw)
        app.state.router = router
        app.state.metrics = metrics
        app.state.metrics_cluster = cluster.Cluster(engine, hub, bus,
                                                    settings.bus_url.split("://", 1)[0])
        metrics.registry.register(app.state.metrics_cluster)
        listener = (exposition.Listener(app.state, settings.metrics_port)
                    if settings.metrics_port is not None else None)
        app.state.metrics_listener = listener
        app.state.checkpointer = checkpointer
        await hub.start()
        await writer.start()
        if checkpointer is not None:
            checkpointer.start()
        if listener is not None:
            await listener.start()
        tasks = [asyncio.create_task(worker.run(), name="delivery-worker"),
                 asyncio.create_task(webhook_worker.run(), name="webhook-worker"),
                 asyncio.create_task(_housekeeping(store, settings), name="housekeeping"),
                 asyncio.create_task(router.run(), name="routing"),
                 asyncio.create_task(Sweeper(store, settings).run(), name="routing-sweep")]
        log.info("connector ready on %s (database: %s, bus: %s)", settings.public_url,
                 engine.dialect.name, settings.bus_url.split("://", 1)[0])
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            await writer.stop()
            await hub.stop()
            await worker.stop()
            await webhook_worker.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await store.close()
            if checkpointer is not None:
                await asyncio.to_thread(checkpointer.stop)
            await bus.disconnect()
            await client.aclose()
            await engine.dispose()
            if in_use is not None:
                in_use.release()

    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal", "message": "internal server error"}, 500)

    return Starlette(
        routes=[*hooks.routes(webhooks), *health.routes, *api_auth.routes, *api_tickets.routes,
                *api_reports.routes, *api_admin.routes, *openapi.routes, *ws.routes,
                *api_search.routes,
                *api_canned.routes, *api_webhooks.routes, *api_end_users.routes, *exposition.routes,
                *api_audit.routes, *api_integration_state.routes,
                # JSON 404/405 for API paths the routes above did not take; then the console.
                fallback.ApiFallback(), *console_routes()],
        middleware=[Middleware(AccessLogMiddleware, trusted_proxies=settings.trusted_networks),
                    Middleware(SecurityHeadersMiddleware),
                    Middleware(lanes.FastLanes, webhooks=webhooks)],
        exception_handlers={Exception: unhandled, OSError: unavailable.handler,
                            sa.exc.SQLAlchemyError: unavailable.handler},
        lifespan=lifespan,
    )


def console_routes() -> list[BaseRoute]:
    """The browser console (`agent_ui/`), static files served at `/`."""
    here = Path(__file__).resolve().parent
    # A source checkout (agent_ui/ beside the package) or an installed wheel.
    for ui in (here.parent / "agent_ui", here / "agent_ui"):
        if (ui / "index.html").exists():
            break
    else:
        return []
    return [Mount("/", app=StaticFiles(directory=ui, html=True), name="console")]


async def _housekeeping(store: Store, settings: Settings, every: float = 60.0) -> None:
    """Drop expired dedupe keys, stream events past their retention, idempotency keys
    past their 24 hours, test sends past `test_sends.KEEP` and settled event webhooks past
    `webhooks.KEEP`, audit events past `CONNECTOR_AUDIT_RETENTION_DAYS` (in small
    batches); hourly, what `retention` purges, in small batches."""
    dedupe = DedupeKey.__table__
    purged_at: dt.datetime | None = None
    while True:
        await asyncio.sleep(every)
        try:
            now = utcnow()
            async with store.begin() as conn:
                await conn.execute(sa.delete(dedupe).where(
                    dedupe.c.seen_at < now - dt.timedelta(seconds=settings.dedupe_window_seconds)))
                await stream.prune(conn, now - dt.timedelta(
                    seconds=settings.stream_retention_seconds))
                await idempotency.prune(conn, now)
                await test_sends.prune(conn, now)
                await event_webhooks.prune(conn, now)
            await audit_log.prune_expired(store.begin, now - dt.timedelta(
                days=settings.audit_retention_days))
            if purged_at is None or now - purged_at >= retention.EVERY:
                purged_at = now
                await retention.purge(store, settings, now)
        except Exception as exc:
            outage.failed(log, "housekeeping", exc)
