"""The HTTP answer to each kind of domain refusal (`connector.domain.errors`), in one place.

| refusal     | status | `error`     |
| ----------- | ------ | ----------- |
| `Invalid`   | 422    | `invalid`   |
| `NotFound`  | 404    | `not_found` |
| `Forbidden` | 403    | `forbidden` |
| `Conflict`  | 409    | `conflict`  |

A refusal naming a `field` lists it under `fields`; its other details go into the
body as they are (`assignee` of a ticket already taken). A `FieldError`'s message
is about the value alone, so the answer's message names the field first.
"""

from __future__ import annotations

from connector.domain.errors import Conflict, DomainError, FieldError, Forbidden, NotFound
from connector.web.http import HTTPError

_ANSWERS: tuple[tuple[type[DomainError], int, str], ...] = (
    (NotFound, 404, "not_found"), (Forbidden, 403, "forbidden"), (Conflict, 409, "conflict"))


def http_error(exc: DomainError) -> HTTPError:
    status, code = next(((s, c) for kind, s, c in _ANSWERS if isinstance(exc, kind)),
                        (422, "invalid"))
    extra = dict(exc.detail)
    field = extra.pop("field", None)
    message = str(exc)
    fields = [{"field": field, "message": message}] if field else None
    if isinstance(exc, FieldError):
        message = f"{field}: {message}"
    return HTTPError(status, code, message, fields, **extra)
