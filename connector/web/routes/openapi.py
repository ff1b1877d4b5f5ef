"""`GET /api/openapi.json`: an OpenAPI 3.1 description of the agent API.

Request bodies come from the same pydantic models the routes validate with, and
path parameters from the served routes (`{id:int}` is an integer), so neither can
drift from what is enforced. Answers are described by `responses`: every 2xx with
its body schema, and every error status an operation can answer with the JSON
error body. tests/test_openapi_fuzz.py checks the real server against all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel
from starlette.convertors import IntegerConvertor
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from connector.domain import labels
from connector.web.routes import audit_io, schemas
from connector.web.routes import end_user_models as end_users_io
from connector.web.routes import responses as out
from connector.web.routes import webhook_models as hooks_io
from connector.web.routes.deps import API_BODY_LIMIT


class Endpoint(NamedTuple):
    method: str
    path: str
    summary: str
    roles: str
    body: type[BaseModel] | None
    status: int
    answer: type[BaseModel]
    #: Query parameters, as OpenAPI parameter objects.
    query: tuple[dict[str, Any], ...] = ()
    #: Error statuses beyond those every operation of its kind answers (see `_errors`).
    also: frozenset[int] = frozenset()
    #: The media type of the success answer (errors are JSON).
    media: str = "application/json"
    #: Takes an `Idempotency-Key` header (`connector.web.idempotency`).
    idempotent: bool = False


def _query_int(name: str, default: int, lo: int, hi: int) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": lo, "maximum": hi, "default": default}}


_STATE = {"name": "state", "in": "query", "required": False,
          "schema": {"type": "string", "enum": ["queued", "assigned", "resolved", "abandoned"]}}
_TICKET = frozenset({409})
#: A report's range: UTC dates, both included, 366 days at most.
#: Only tickets bearing this label (`labels.check`): reports and search.
_LABEL = {"name": "label", "in": "query", "required": False,
          "description": "Only tickets bearing this label (case does not matter)",
          "schema": {"type": "string", "minLength": 1, "maxLength": 50,
                     "pattern": "^[^\x00-\x1f\x7f]*\\S[^\x00-\x1f\x7f]*$"}}
_RANGE = (*({"name": name, "in": "query", "required": True,
              "description": f"A UTC date, included ({end} of the range)",
              "schema": {"type": "string", "format": "date"}}
             for name, end in (("from", "start"), ("to", "end"))),
          _LABEL)
_BY = {"name": "by", "in": "query", "required": False,
       "schema": {"type": "string", "enum": ["day", "agent", "integration", "category"],
                  "default": "day"}}  # a ticket action that does not fit the ticket's state

_NO_NUL = "^[^\x00]*$"
#: The ticket list's filters (`reports.parse_filter`; empty: any).
_FILTERS = (
    *({"name": name, "in": "query", "required": False,
       "schema": {"type": "string", "maxLength": most, "pattern": pattern}}
      for name, most, pattern in (("agent", 200, _NO_NUL), ("label", 50, labels.PATTERN),
                                  ("integration", 200, _NO_NUL),
                                  ("end_user", 200, _NO_NUL))),
    *({"name": name, "in": "query", "required": False,
       "description": "A UTC date, included", "schema": {"type": "string", "format": "date"}}
      for name in ("from", "to")),
)

ENDPOINTS: list[Endpoint] = [
    Endpoint("post", "/api/login", "Sign in; sets the session cookie", "anyone",
             schemas.LoginIn, 200, out.SignedIn, also=frozenset({429})),
    Endpoint("post", "/api/logout", "End this session and close its sockets", "any role",
             None, 200, out.SignedOut),
    Endpoint("get", "/api/session", "Current user, CSRF token and stream cursor", "any role",
             None, 200, out.Session),
    Endpoint("get", "/api/me", "The signed-in user: status, capacity, skills", "any role",
             None, 200, out.Profile),
    Endpoint("patch", "/api/me", "Set one's status (online, away, offline) or display name",
             "any role", schemas.MePatch, 200, out.Profile),
    Endpoint("post", "/api/me/password",
             "Change one's own password (the current one and a new one); ends one's other "
             "sessions, clears the must-change mark", "any role",
             schemas.PasswordChangeIn, 200, out.PasswordChanged),
    Endpoint("get", "/api/tickets",
             "List tickets (agents: queue and own), narrowed by agent, label, integration, "
             "end user and dates (of the closing for resolved and abandoned, else of the "
             "handover)", "any role",
             None, 200, out.TicketPage, query=(
                 _STATE, _query_int("page", 1, 1, 100_000), _query_int("per_page", 50, 1, 200),
                 *_FILTERS)),
    Endpoint("get", "/api/tickets/{id}", "A ticket with its whole transcript", "any role",
             None, 200, out.TicketDetail, also=frozenset({403})),
    Endpoint("patch", "/api/tickets/{id}", "Replace the ticket's labels",
             "assignee, supervisor, admin", schemas.TicketPatchIn, 200, out.Ticket,
             also=frozenset({403})),
    Endpoint("get", "/api/tickets/{id}/history",
             "The end user's earlier tickets of the same conversation one may open",
             "any role", None, 200, out.TicketHistory, also=frozenset({403})),
    Endpoint("get", "/api/labels",
             "Labels used on tickets one may see, by prefix, most used first", "any role",
             None, 200, out.LabelSuggestions, query=(
                 {"name": "prefix", "in": "query", "required": False,
                  "schema": {"type": "string", "maxLength": 50, "pattern": _NO_NUL}},)),
    Endpoint("post", "/api/tickets/{id}/claim",
             "Claim a queued ticket (409 if taken, or the agent is at capacity)",
             "any role", None, 200, out.Ticket, also=_TICKET),
    Endpoint("post", "/api/tickets/{id}/messages", "Reply to the end user (assignee only)",
             "any role", schemas.ReplyIn, 201, out.Message, also=_TICKET, idempotent=True),
    Endpoint("post", "/api/tickets/{id}/notes", "Internal note, never delivered", "any role",
             schemas.TextIn, 201, out.Message, also=_TICKET, idempotent=True),
    Endpoint("post", "/api/tickets/{id}/transfer",
             "Transfer to a user, or to the queue with null", "assignee, supervisor, admin",
             schemas.TransferIn, 200, out.Ticket, also=_TICKET),
    Endpoint("post", "/api/tickets/{id}/resolve", "Resolve, with an optional closing message",
             "assignee, supervisor, admin", schemas.ResolveIn, 200, out.Ticket, also=_TICKET),
    Endpoint("post", "/api/tickets/{id}/handback",
             "Hand a Chatlayer Offloading conversation back to its bot: resolve it (an "
             "optional closing message first), then un-pause the bot (409 for another kind)",
             "assignee, supervisor, admin", schemas.HandbackIn, 200, out.Ticket, also=_TICKET),
    Endpoint("post", "/api/messages/{id}/resend", "Re-send a failed delivery",
             "assignee, supervisor, admin", None, 200, out.Resent, also=frozenset({409})),
    Endpoint("get", "/api/queue",
             "Waiting count, oldest wait, load per agent, agents online, the queue by "
             "category and language, first-response targets and breaches",
             "supervisor, admin", None, 200, out.Queue),
    Endpoint("get", "/api/queue/history",
             "Queue length and waits per bucket over the last hours", "supervisor, admin",
             None, 200, out.QueueHistory, query=(
                 _query_int("hours", 4, 1, 48), _query_int("bucket_seconds", 300, 60, 3600))),
    Endpoint("get", "/api/agents", "Colleagues with their load and presence", "any role",
             None, 200, out.Agents),
    Endpoint("get", "/api/search",
             "Messages one may read matching every word of q (case and accents ignored), "
             "newest first, a page at a time", "any role", None, 200, out.SearchPage, query=(
                 {"name": "q", "in": "query", "required": True,
                  "description": "Words (letters and digits), all required; at most 8 "
                                 "words and 200 characters. No word: nothing is found",
                  "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                 _STATE,
                 {"name": "integration", "in": "query", "required": False,
                  "schema": {"type": "string", "maxLength": 32, "pattern": "^[^\x00]*$"}},
                 *({"name": name, "in": "query", "required": False,
                    "description": "A UTC date of the message, included",
                    "schema": {"type": "string", "format": "date"}} for name in ("from", "to")),
                 _query_int("limit", 20, 1, 100),
                 {"name": "before", "in": "query", "required": False,
                  "description": "The previous page's next_before",
                  "schema": {"type": "integer", "minimum": 1}}, _LABEL)),
    Endpoint("get", "/api/reports/tickets.csv",
             "One CSV row per ticket handed over in the range, as an attachment",
             "supervisor, admin", None, 200, out.TicketsCsv, query=_RANGE, media="text/csv"),
    Endpoint("get", "/api/reports/tickets",
             "Handovers, waits, first responses, handling, re-queues and auto-resolved "
             "per day, agent, integration or category", "supervisor, admin",
             None, 200, out.TicketReport, query=(*_RANGE, _BY)),
    Endpoint("get", "/api/integrations", "List integrations", "admin",
             None, 200, out.Integrations),
    Endpoint("post", "/api/integrations", "Create; the Smartly URL with its key is shown once",
             "admin", schemas.IntegrationIn, 201, out.IntegrationCreated),
    Endpoint("get", "/api/integrations/{id}", "One integration", "admin",
             None, 200, out.Integration),
    Endpoint("patch", "/api/integrations/{id}", "Set name, channel URL, verify token, notices",
             "admin", schemas.IntegrationPatch, 200, out.Integration),
    Endpoint("post", "/api/integrations/{id}/rotate-key",
             "New key; the old one keeps working for the grace period", "admin",
             schemas.RotateIn, 200, out.IntegrationWithKey),
    Endpoint("post", "/api/integrations/{id}/rotate-signing-secret",
             "New signing secret, shown once; the old one also signs for the grace period",
             "admin", schemas.RotateIn, 200, out.IntegrationWithSigningSecret),
    Endpoint("post", "/api/integrations/{id}/disable",
             "Disable: its webhooks answer 403 integration_disabled and store nothing; its "
             "queued replies wait", "admin", None, 200, out.Integration),
    Endpoint("post", "/api/integrations/{id}/enable",
             "Enable again: webhooks taken, waiting replies sent", "admin",
             None, 200, out.Integration),
    Endpoint("delete", "/api/integrations/{id}",
             "Delete an integration; 409 while it has conversations unless "
             "with_conversations=true deletes them too", "admin", None, 200,
             audit_io.IntegrationDeleted, also=frozenset({409}), query=(
                 {"name": "with_conversations", "in": "query", "required": False,
                  "schema": {"type": "string", "enum": ["true", "false"],
                             "default": "false"}},)),
    Endpoint("get", "/api/audit",
             "The audit trail, newest first: who did what, when, from where, what changed "
             "(never a secret)", "admin", None, 200, audit_io.AuditPage, query=(
                 *({"name": name, "in": "query", "required": False, "description": text,
                    "schema": {"type": "string", "maxLength": most, "pattern": _NO_NUL}}
                   for name, most, text in (
                       ("actor", 100, "The actor's username then (cli: the command line)"),
                       ("target", 231, "type or type:id (integration:abc, user:3)"))),
                 {"name": "action", "in": "query", "required": False,
                  "description": "An action (user.created) or its first part (user)",
                  "schema": {"type": "string", "pattern": "^[a-z_]{1,30}(\\.[a-z_]{1,30})?$"}},
                 *({"name": name, "in": "query", "required": False,
                    "description": "A UTC date, included",
                    "schema": {"type": "string", "format": "date"}}
                   for name in ("from", "to")),
                 {"name": "before", "in": "query", "required": False,
                  "description": "Only events older than this id (`next_before`)",
                  "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}},
                 _query_int("limit", 50, 1, 200))),
    Endpoint("get", "/api/integrations/{id}/deliveries", "Recent deliveries with status codes",
             "admin", None, 200, out.Deliveries),
    Endpoint("post", "/api/integrations/{id}/test", "Send a test message to the channel",
             "admin", schemas.TestMessageIn, 200, out.TestResult),
    Endpoint("get", "/api/webhooks", "Event webhooks (never their secrets)", "admin",
             None, 200, hooks_io.Webhooks),
    Endpoint("post", "/api/webhooks",
             "Subscribe a URL to events; its whsec_ signing secret is shown once", "admin",
             hooks_io.WebhookIn, 201, hooks_io.WebhookWithSecret),
    Endpoint("get", "/api/webhooks/{id}", "One event webhook", "admin",
             None, 200, hooks_io.Webhook),
    Endpoint("patch", "/api/webhooks/{id}", "Set URL, events, description; disable or enable",
             "admin", hooks_io.WebhookPatch, 200, hooks_io.Webhook),
    Endpoint("delete", "/api/webhooks/{id}", "Delete an event webhook and its delivery log",
             "admin", None, 200, hooks_io.WebhookDeleted),
    Endpoint("post", "/api/webhooks/{id}/rotate-secret",
             "New signing secret (shown once); the old one also signs for the grace period",
             "admin", hooks_io.RotateSecretIn, 200, hooks_io.WebhookWithSecret),
    Endpoint("post", "/api/webhooks/{id}/test",
             "Queue a webhook.test event for this webhook (409 if disabled)", "admin",
             None, 202, hooks_io.WebhookDelivery, also=frozenset({409})),
    Endpoint("get", "/api/webhooks/{id}/deliveries",
             "The webhook's latest deliveries, newest first", "admin",
             None, 200, hooks_io.WebhookDeliveries),
    Endpoint("post", "/api/webhook-deliveries/{id}/resend",
             "Queue a failed (dead-lettered) event webhook again, same webhook-id", "admin",
             None, 200, hooks_io.WebhookDelivery, also=frozenset({409})),
    Endpoint("post", "/api/end-users/erase",
             "Erase one end user: every text, raw body and delivery body of theirs; "
             "their id becomes a pseudonym, the timings stay (docs/operations.md)", "admin",
             end_users_io.EraseIn, 200, end_users_io.Erased, also=frozenset({404})),
    Endpoint("get", "/api/users", "List users", "admin", None, 200, out.Users),
    Endpoint("post", "/api/users", "Create a user", "admin", schemas.UserIn, 201, out.UserOut),
    Endpoint("patch", "/api/users/{id}",
             "Change role, disable, reset the password, set capacity and skills", "admin",
             schemas.UserPatch, 200, out.UserOut, also=frozenset({409})),
    Endpoint("get", "/api/canned-responses",
             "Canned responses one may use: the shared ones and one's own", "any role",
             None, 200, out.CannedResponses),
    Endpoint("post", "/api/canned-responses",
             "Add a canned response (shared: supervisors and admins; 409: shortcut taken)",
             "any role", schemas.CannedIn, 201, out.CannedResponse, also=frozenset({409})),
    Endpoint("patch", "/api/canned-responses/{id}",
             "Change a canned response's shortcut or text (shared: staff; personal: owner)",
             "any role", schemas.CannedPatch, 200, out.CannedResponse, also=frozenset({409})),
    Endpoint("delete", "/api/canned-responses/{id}",
             "Delete a canned response (shared: staff; personal: owner)", "any role",
             None, 200, out.CannedDeleted),
]

ERRORS: dict[int, str] = {
    400: "`malformed_json`: the body is not JSON (empty, not UTF-8, or a syntax error); "
         "`bad_request`: an invalid Content-Length.",
    401: "`unauthorized`: not signed in (sign-in: wrong username or password).",
    403: "`csrf`: missing or wrong X-CSRF-Token; `forbidden`: the role or the ticket's "
         "assignee does not allow it; `origin`: a cross-origin sign-in; "
         "`password_change_required`: the user must change their password first "
         "(`POST /api/me/password`; only the session, sign-out and that are answered).",
    404: "`not_found`: no such resource (or no such path).",
    405: "`method_not_allowed`: the path is served, not with this method; `Allow` lists "
         "the methods it takes.",
    408: "`timeout`: the body did not arrive in time (`CONNECTOR_BODY_TIMEOUT_SECONDS`); "
         "the connection is closed.",
    409: "`conflict`: the action does not fit the resource's state (e.g. a ticket "
         "already taken, which names its holder).",
    413: f"`too_large`: the body is larger than {API_BODY_LIMIT} bytes.",
    422: "`invalid`: a field or query parameter is wrong (a string with a NUL character "
         "is, anywhere in a body); `fields` names each.",
    429: "`throttled`: too many failed sign-ins; retry after `Retry-After` seconds.",
}
_ERROR_SCHEMA = {
    "type": "object", "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                   "fields": {"type": "array", "items": {
                       "type": "object", "required": ["field", "message"], "properties": {
                           "field": {"type": "string"}, "message": {"type": "string"}}}}}}


#: The same key from the same user within 24 h answers the first answer again
#: (`Idempotent-Replayed: true`) and does nothing; for another request, 422.
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "One per composed request: a retry with it within 24 h is answered with "
                   "the first answer (header Idempotent-Replayed: true) and does nothing "
                   "again; the same key for another path or body answers 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200,
               "pattern": "^[\\x20-\\x7e]+$"}}


#: Bodies that may be left out (the defaults apply).
_OPTIONAL_BODIES = (schemas.RotateIn, hooks_io.RotateSecretIn)


def _errors(endpoint: Endpoint) -> set[int]:
    """The error statuses the endpoint answers with."""
    found = {401} | set(endpoint.also)  # sign-in answers 401 for wrong credentials
    if endpoint.roles != "anyone" or endpoint.method != "get":
        # CSRF (sign-in: origin), a role that may not, or a password to change first
        found.add(403)
    if "{id}" in endpoint.path:
        found.add(404)
    if endpoint.body is not None:
        found |= {400, 408, 413, 422}
    if endpoint.query:
        found.add(422)
    return found


def _error(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": ERRORS[status], "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"required": True, "schema": {"type": "integer"},
                                             "description": "Seconds to wait."}}
    if status == 405:
        answer["headers"] = {"Allow": {"required": True, "schema": {"type": "string"}}}
    return answer


def _path_parameters(path: str, routes: Sequence[BaseRoute]) -> list[dict[str, Any]]:
    """The path's parameters as the served route converts them (`{id:int}`: integer)."""
    for route in routes:
        if isinstance(route, Route) and route.path.replace(":int}", "}") == path:
            params = []
            for name, convertor in route.param_convertors.items():
                schema: dict[str, Any] = (
                    {"type": "integer", "minimum": 0}
                    if isinstance(convertor, IntegerConvertor) else {"type": "string"})
                params.append({"name": name, "in": "path", "required": True, "schema": schema})
            return params
    raise LookupError(f"no served route for {path}")


def build(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The description of the ENDPOINTS served by `routes` (the app's)."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for e in ENDPOINTS:
        answers: dict[str, Any] = {str(e.status): {
            "description": "success", "content": {e.media: {"schema": ref(e.answer)}}}}
        answers.update({str(s): _error(s) for s in sorted(_errors(e))})
        op: dict[str, Any] = {"summary": e.summary, "description": f"Roles: {e.roles}.",
                              "responses": answers}
        parameters = [*_path_parameters(e.path, routes), *e.query]
        if e.body is not None:
            op["requestBody"] = {"required": e.body not in _OPTIONAL_BODIES, "content": {
                "application/json": {"schema": ref(e.body)}}}
        if e.method != "get" and e.path != "/api/login":
            parameters.append({"name": "X-CSRF-Token", "in": "header", "required": True,
                               "schema": {"type": "string"}})
        if e.idempotent:
            parameters.append(_IDEMPOTENCY_KEY)
        if e.path == "/api/login":
            op["security"] = []  # the one operation open to anyone
        if parameters:
            op["parameters"] = parameters
        paths.setdefault(e.path, {})[e.method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Handover connector agent API", "version": "1", "description": (
            "Every error answer is JSON: `{\"error\": code, \"message\": text, "
            "\"fields\": [{\"field\", \"message\"}]?}`. No string in a request body may "
            "contain NUL (U+0000): 422. A method a path does not take "
            "answers 405 with `Allow` (components/responses/MethodNotAllowed); a path "
            "under /api/ that is not described here, or an id that is not a whole "
            "number, answers 404.")},
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {"MethodNotAllowed": _error(405), "NotFound": _error(404)},
            "securitySchemes": {"session": {
                "type": "apiKey", "in": "cookie", "name": "connector_session"}},
        },
        "security": [{"session": []}],
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build(request.app.routes))


routes = [Route("/api/openapi.json", openapi, methods=["GET"])]
