"""The `Idempotency-Key` header of unsafe API requests (the record: `domain.idempotency`).

`respond` runs a write once per signed-in user and key: the same key within 24
hours answers the first answer again (status and body, with
`Idempotent-Replayed: true`) and does nothing; the same key for another path
or another body is refused 422. Without the header the write simply runs. Any
POST whose action is one `Store.write` can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connector.accounts.auth import Principal
from connector.domain import idempotency
from connector.web.http import HTTPError

HEADER = "Idempotency-Key"
MAX_KEY = 200


def key_of(request: Request) -> str | None:
    """The request's key: None when absent; 422 unless 1..200 printable ASCII characters."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY or not all(" " <= c <= "~" for c in raw):
        message = f"must be 1 to {MAX_KEY} printable ASCII characters"
        raise HTTPError(422, "invalid", f"{HEADER}: {message}",
                        [{"field": HEADER, "message": message}])
    return raw


async def respond(request: Request, principal: Principal, data: BaseModel | None,
                  status: int, action: Callable[..., Any], *args: Any) -> Response:
    """`action(tx, *args)` in one `Store.write`, answered as JSON with `status`; once per
    key when the request has one (`data`: the validated body, fingerprinted)."""
    key = key_of(request)
    store = request.app.state.store
    if key is None:
        return JSONResponse(await store.write(action, *args), status_code=status)
    keyed = idempotency.Keyed(
        principal.actor.id, key, f"{request.method} {request.url.path}",
        idempotency.fingerprint(None if data is None else data.model_dump(mode="json")))
    answer = await store.write(idempotency.once_sync, keyed, status, action, *args)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)
