"""`connector.web.errors`: each kind of domain refusal gets its one HTTP answer."""

from __future__ import annotations

import orjson
import pytest

from connector.accounts.integrations import IntegrationError
from connector.accounts.users import UserError
from connector.domain import errors
from connector.web.errors import http_error


def answer(exc: errors.DomainError) -> tuple[int, dict[str, object]]:
    response = http_error(exc).response()
    return response.status_code, orjson.loads(response.body)


@pytest.mark.parametrize(("exc", "status", "code"), [
    (errors.NotFound("no such ticket"), 404, "not_found"),
    (errors.Forbidden("not allowed to see this ticket"), 403, "forbidden"),
    (errors.Conflict("ticket is resolved"), 409, "conflict"),
    (errors.Invalid("text must not be empty"), 422, "invalid"),
])
def test_each_kind_has_its_status_and_code(exc, status, code):
    assert answer(exc) == (status, {"error": code, "message": str(exc)})


def test_a_named_field_is_listed_and_other_details_go_into_the_body():
    assert answer(errors.Invalid("text must not be empty", field="text")) == (422, {
        "error": "invalid", "message": "text must not be empty",
        "fields": [{"field": "text", "message": "text must not be empty"}]})
    assert answer(errors.Conflict("ticket already taken", assignee="bob")) == (409, {
        "error": "conflict", "message": "ticket already taken", "assignee": "bob"})


@pytest.mark.parametrize("kind", [UserError, IntegrationError])
def test_a_field_error_names_its_field_first(kind):
    assert answer(kind("role", "must be one of agent, supervisor, admin")) == (422, {
        "error": "invalid", "message": "role: must be one of agent, supervisor, admin",
        "fields": [{"field": "role", "message": "must be one of agent, supervisor, admin"}]})
