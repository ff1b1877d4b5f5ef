"""Sign-in and sign-out; the signed-in user (`/api/me`) and their own password."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.accounts import auth, users
from connector.accounts.security import hash_password, verify_password
from connector.domain import agents
from connector.realtime import stream
from connector.web.http import HTTPError, error_response
from connector.web.routes.deps import api, audit_actor, body, client_address, origin_allowed
from connector.web.routes.schemas import LoginIn, MePatch, PasswordChangeIn


async def login(request: Request) -> Response:
    if not origin_allowed(request):
        return error_response(403, "origin", "cross-origin sign-in refused")
    try:
        data = await body(request, LoginIn)
    except HTTPError as exc:
        return exc.response()
    app = request.app
    try:
        token, principal = await auth.login(app.state.store, app.state.settings, data.username,
                                            data.password, client_address(request),
                                            audit_actor(request, username=data.username))
    except auth.LoginRefused as exc:
        if exc.retry_after:
            retry = str(max(1, int(exc.retry_after)))
            return JSONResponse({"error": "throttled", "message": str(exc)}, 429,
                                headers={"Retry-After": retry})
        return error_response(401, "unauthorized", str(exc))
    response = JSONResponse({"user": principal.session_user(),
                             "csrf_token": principal.csrf_token})
    settings = app.state.settings
    response.set_cookie(auth.COOKIE, token, max_age=int(settings.session_max_seconds),
                        httponly=True, samesite="strict", secure=settings.secure_cookies,
                        path="/")
    return response


@api(before_password_change=True)
async def logout(request: Request, principal: auth.Principal) -> Response:
    async with request.app.state.store.transaction() as tx:
        await auth.logout(tx.conn, principal.session_id)
    request.app.state.hub.close_session(principal.session_id)
    response = JSONResponse({"status": "signed out"})
    response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.app.state.settings.secure_cookies)
    return response


@api(before_password_change=True)
async def session(request: Request, principal: auth.Principal) -> Response:
    """Who is signed in, the CSRF token, and the stream cursor to resume from."""
    async with request.app.state.store.read() as conn:
        cursor = await stream.last_cursor(conn)
    settings = request.app.state.settings
    return JSONResponse({"user": principal.session_user(), "csrf_token": principal.csrf_token,
                         "cursor": cursor,
                         "waiting_threshold_seconds": settings.waiting_threshold_seconds,
                         "routing": settings.routing})


@api()
async def me(request: Request, principal: auth.Principal) -> Response:
    """The signed-in user with their routing profile: status, capacity, skills."""
    async with request.app.state.store.read() as conn:
        out = await conn.run_sync(agents.me_sync, principal.user_id)
    return JSONResponse(out)


@api()
async def patch_me(request: Request, principal: auth.Principal) -> Response:
    """Set one's own status (a `user.status` event) or display name."""
    data = await body(request, MePatch)
    store = request.app.state.store
    if "display_name" in data.model_fields_set:
        await store.write(agents.set_profile_sync, principal.user_id,
                          {"display_name": data.display_name})
    if data.status is not None:
        out = await store.write(agents.set_status_sync, principal.user_id, data.status)
        request.app.state.router.wake()
    else:
        async with store.read() as conn:
            out = await conn.run_sync(agents.me_sync, principal.user_id)
    return JSONResponse(out)


@api(before_password_change=True)
async def change_password(request: Request, principal: auth.Principal) -> Response:
    """Replace one's own password, giving the current one: the must-change mark is
    cleared, every other session of the user ends, this one stays."""
    data = await body(request, PasswordChangeIn)
    users.check_new_password(data.current, data.new)
    store = request.app.state.store
    async with store.read() as conn:
        user = await users.by_id(conn, principal.user_id)
    if user is None or not await run_in_threadpool(verify_password, data.current,
                                                    user.password_hash):
        raise HTTPError(422, "invalid", "current: not your current password",
                        [{"field": "current", "message": "not your current password"}])
    password_hash = await run_in_threadpool(hash_password, data.new)
    async with store.transaction() as tx:
        await users.change_own_password(tx.conn, principal.user_id, principal.session_id,
                                        password_hash)
    return JSONResponse({"status": "password changed"})


routes = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/session", session, methods=["GET"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/me", patch_me, methods=["PATCH"]),
    Route("/api/me/password", change_password, methods=["POST"]),
]
