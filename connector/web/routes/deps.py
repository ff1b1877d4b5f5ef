"""What every API route needs: the signed-in principal, CSRF, a validated body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from connector import logs
from connector.accounts import auth
from connector.domain import audit
from connector.domain.errors import DomainError
from connector.web import proxies
from connector.web.errors import http_error
from connector.web.http import HTTPError, parse_json, read_body

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[Response]]

#: Larger ids cannot exist (64-bit columns); they are simply not found.
MAX_ID = 2**63 - 1
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_BODY_LIMIT = 64 * 1024


#: The answer to a user who must change their password first, on any other route.
PASSWORD_CHANGE_REQUIRED = HTTPError(
    403, "password_change_required",
    "choose a new password first: POST /api/me/password {current, new}")


def api(*roles: str, before_password_change: bool = False,
        ) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Route decorator: authenticate, authorise by role, check CSRF, map errors (a domain
    refusal as `connector.web.errors` answers it).

    A user who must change their password is refused (403 `password_change_required`)
    but by the few routes marked `before_password_change` (the session, sign-out, the
    password change itself). The wrapped handler is called as
    `handler(request, principal)`.
    """

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                principal = await current(request)
                if principal is None:
                    raise HTTPError(401, "unauthorized", "sign in first")
                if request.method in UNSAFE and not auth.csrf_ok(
                        principal, request.headers.get("x-csrf-token")):
                    raise HTTPError(403, "csrf", "missing or wrong X-CSRF-Token header")
                if principal.must_change_password and not before_password_change:
                    raise PASSWORD_CHANGE_REQUIRED
                if roles and principal.role not in roles:
                    raise HTTPError(403, "forbidden", "your role may not do this")
                return await handler(request, principal)
            except HTTPError as exc:
                return exc.response()
            except DomainError as exc:
                return http_error(exc).response()

        return endpoint

    return decorate


async def current(request: Request) -> auth.Principal | None:
    return await auth.authenticate(request.app.state.store, request.app.state.settings,
                                   request.cookies.get(auth.COOKIE))


async def body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The request's JSON body validated as `model` (read within the size and time limits);
    with `optional`, an empty body is `model()`."""
    raw = await read_body(request, API_BODY_LIMIT)
    if optional and not raw.strip():
        return model()
    data = parse_json(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError) -> HTTPError:
    fields = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"].removeprefix("Value error, ")
        fields.append({"field": name, "message": message})
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return HTTPError(422, "invalid", summary, fields)


def int_param(request: Request, name: str) -> int:
    raw = request.path_params.get(name)
    if isinstance(raw, int) and raw <= MAX_ID:
        return raw
    raise HTTPError(404, "not_found", "no such resource")


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not lo <= int(raw) <= hi:
        raise HTTPError(422, "invalid", f"{name}: must be a whole number from {lo} to {hi}",
                        [{"field": name, "message": f"must be from {lo} to {hi}"}])
    return int(raw)


def client_address(request: Request) -> str:
    """The client's address: the peer, or what trusted proxies forwarded (`proxies`)."""
    return proxies.client_address(request.scope, request.app.state.settings.trusted_networks)


def audit_actor(request: Request, principal: auth.Principal | None = None, *,
                username: str | None = None) -> audit.Actor:
    """Who acts, as the audit trail records them: the signed-in `principal` (or, for a
    sign-in, just the `username` tried), the client's address, the request's id."""
    address = client_address(request)
    if principal is None:
        return audit.Actor(username=username[:100] if username else None, address=address,
                           request_id=logs.request_id.get())
    return audit.Actor(principal.user_id, principal.username, principal.role, address,
                       logs.request_id.get())


def origin_allowed(request: Any) -> bool:
    origin = request.headers.get("origin")
    return origin is None or origin in request.app.state.settings.allowed_origins
