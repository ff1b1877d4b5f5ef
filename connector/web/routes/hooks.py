"""Webhook endpoints: one per source (`connector.sources`), in front of the group-commit
writer.

Every bot turn of every conversation arrives here, so these are plain ASGI
apps rather than request/response functions: no `Request` object, no
response class, a JSON answer written straight to `send`, and
`lanes.FastLanes` takes their POSTs past the router. They still sit behind the app's access
log, security headers and error handling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connector.accounts import integrations
from connector.accounts.security import tokens_equal
from connector.ingest.batcher import IngestFailed, IngestRefused
from connector.ingest.inbound import BadInput
from connector.sources import Source
from connector.sources.chatlayer_offloading import CHALLENGE
from connector.storage.db import unreachable
from connector.storage.models import Integration
from connector.web import unavailable
from connector.web.http import ClientGone, HTTPError, parse_json, receive_body, send_json

_UNAUTHORIZED = ("unauthorized", "unknown integration or wrong key")
_DISABLED = ("integration_disabled",
             "this integration is disabled; nothing was stored (an admin can enable it)")


async def _authorized(state: Any, integration_id: str, check: Callable[[Integration], bool],
                      ) -> Integration | None:
    """The integration when `check` passes, re-reading it once before refusing; 403
    `integration_disabled` when it passes but the integration is disabled (checked after
    the credentials, so only its caller learns it; the cached row is re-read within
    `integrations.CACHE_SECONDS`, so a disable holds on every instance within that)."""
    integration = await state.integrations.get(integration_id)
    if integration is None or not check(integration):
        integration = await state.integrations.get(integration_id, fresh=True)
        if integration is None or not check(integration):
            return None
    if integration.disabled:
        raise HTTPError(403, *_DISABLED)
    return integration


def _query_param(scope: Scope, name: str) -> str | None:
    for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key == name:
            return value
    return None


def _query_key(scope: Scope) -> str:
    query: bytes = scope["query_string"]
    if not query:
        return ""
    if query.startswith(b"key=") and b"&" not in query and b"%" not in query \
            and b"+" not in query:
        return query[4:].decode("latin-1")  # the usual `?key=...`: nothing to unquote
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "key":
            return value
    return ""


class Webhook:
    """The webhook of one source as an ASGI app: authenticates the request the source's
    way, parses the body with it and answers with what became of the event."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.handle = self._with_key if source.auth == "key" else self._with_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = await self.handle(scope["app"].state, scope, receive)
        except HTTPError as exc:
            scope["app"].state.metrics.webhook_event(self.source.name, exc.code)
            await exc.response()(scope, receive, send)
            return
        except ClientGone:
            return  # nobody to answer; nothing was stored
        except Exception as exc:
            if not unreachable(exc):
                raise
            scope["app"].state.metrics.webhook_event(self.source.name, "unavailable")
            await unavailable.response(exc)(scope, receive, send)
            return
        await send_json(send, status, body)

    async def _keyed(self, state: Any, scope: Scope) -> Integration:
        """The integration whose key is in the query, if it is of a kind this source
        serves; with a health-checked source, the platform's verify token in the query
        (`challenge.verifyToken`) must match too when it is given."""
        key = _query_key(scope)
        kinds = self.source.kinds
        integration = await _authorized(
            state, scope["path_params"]["integration_id"],
            lambda i: bool(key) and i.kind in kinds and integrations.key_valid(i, key))
        if integration is None:
            raise HTTPError(401, *_UNAUTHORIZED)
        if self.source.health_check:
            token = _query_param(scope, CHALLENGE)
            if token is not None and not tokens_equal(token, integration.verify_token):
                raise HTTPError(401, "unauthorized", "wrong verify token")
        return integration

    async def health(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`GET`: the platform's health check. The key and the verify token
        (`challenge.verifyToken`) must both be right: `{"status": "ok"}`, else 401."""
        state = scope["app"].state
        try:
            if _query_param(scope, CHALLENGE) is None:
                raise HTTPError(401, "unauthorized", "challenge.verifyToken is required")
            await self._keyed(state, scope)
        except HTTPError as exc:
            await exc.response()(scope, receive, send)
            return
        except Exception as exc:
            if not unreachable(exc):
                raise
            await unavailable.response(exc)(scope, receive, send)
            return
        await send_json(send, 200, {"status": "ok"})

    async def _with_key(self, state: Any, scope: Scope, receive: Receive) -> tuple[int, Any]:
        """The integration's key in the query, checked before the body is read."""
        integration = await self._keyed(state, scope)
        raw = await receive_body(scope, receive, state.settings.max_body_bytes)
        return await self._submit(state, integration, parse_json(raw), raw)

    async def _with_token(self, state: Any, scope: Scope, receive: Receive,
                          ) -> tuple[int, Any]:
        """The integration's verify token in the body."""
        raw = await receive_body(scope, receive, state.settings.max_body_bytes)
        body = parse_json(raw)
        token = body.get(self.source.token_field) if isinstance(body, dict) else None
        kinds = self.source.kinds
        integration = await _authorized(
            state, scope["path_params"]["integration_id"],
            lambda i: isinstance(token, str) and i.kind in kinds
            and tokens_equal(token, i.verify_token))
        if integration is None:
            raise HTTPError(401, "unauthorized", "unknown integration or wrong verify token")
        return await self._submit(state, integration, body, raw)

    async def _submit(self, state: Any, integration: Integration, body: Any, raw: bytes,
                      ) -> tuple[int, Any]:
        try:
            inbound = self.source.parse(integration.id, body, raw)
        except BadInput as exc:
            raise HTTPError(422, "invalid", str(exc), exc.errors) from None
        bot = self.source.bot_of(inbound)
        if bot is not None and integration.bot_id != bot:
            async with state.store.transaction() as tx:
                bound = await integrations.bind_bot(tx.conn, integration.id, bot)
            state.integrations.forget(integration.id)
            if not bound:
                message = "this integration serves another bot; register one per bot"
                raise HTTPError(422, "invalid", f"botId: {message}",
                                [{"field": "botId", "message": message}])
        try:
            result = await state.ingest.submit(inbound)
        except IngestFailed:
            raise HTTPError(503, "unavailable",
                            "could not store the event; retry later") from None
        except IngestRefused:
            raise HTTPError(422, "unstorable", "the event cannot be stored; sending it again "
                            "will not help") from None
        state.metrics.webhook_event(self.source.name, result.status)
        return self.source.answer(inbound, result)


def webhooks(sources: Mapping[str, Source]) -> dict[str, Webhook]:
    """The webhook of each source, by its path segment."""
    return {source.segment: Webhook(source) for source in sources.values()}


class _Health:
    """A webhook's health check (`Webhook.health`) as an ASGI app."""

    def __init__(self, hook: Webhook) -> None:
        self.hook = hook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.hook.health(scope, receive, send)


def routes(hooks: Mapping[str, Webhook]) -> list[Route]:
    out = []
    for segment, hook in hooks.items():
        path = f"/hooks/{segment}/{{integration_id}}"
        if hook.source.health_check:
            out.append(Route(path, _Health(hook), methods=["GET"]))
        out.append(Route(path, hook, methods=["POST"]))
    return out
