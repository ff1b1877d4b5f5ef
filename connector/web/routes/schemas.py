"""Request bodies of the agent API. Unknown fields are refused (422 naming them).

Where a check is made in code (a validator, `users.check_username`,
`integrations.check_channel_url`), a `pattern` in the field's JSON schema says
the same for `/api/openapi.json`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from connector.accounts import integrations, users
from connector.domain import agents, csat, notices
from connector.domain import labels as ticket_labels
from connector.domain.roles import Role
from connector.domain.tickets import MAX_TEXT


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _whole(value: object) -> object:
    """A whole number written with a fraction (`3.0`) is that number, as JSON Schema's
    `integer` says; `3.5` stays a float and is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Taking `3.0` for an integer field (strict models refuse a float for an int otherwise);
#: placed after the field's bounds: `Annotated[int, Field(ge=1), WHOLE]`.
WHOLE = BeforeValidator(_whole)
#: Some character that is not white space, and no NUL (`_not_blank`).
NOT_BLANK = r"^[^\x00]*\S[^\x00]*$"
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT,
                            json_schema_extra={"pattern": NOT_BLANK}),
                 AfterValidator(_not_blank)]
USERNAME = users.USERNAME_PATTERN
#: `integrations.check_channel_url` also wants a URL the HTTP client can send to
#: (a valid host and port).
CHANNEL_URL = {"pattern": r"^https?://[^\s/?#]",
               "description": "An absolute http(s) URL: the Chatlayer channel's webhook."}
#: `integrations.check_name` strips it first.
NAME = {"pattern": r"\S"}
BUSINESS_HOURS_EXAMPLE = {"timezone": "Europe/Paris",
                          "weekly": {d: [["09:00", "18:00"]]
                                     for d in ("mon", "tue", "wed", "thu", "fri")},
                          "closed_dates": ["2026-12-25"]}


class Strict(BaseModel):
    """Unknown fields and loose types are refused; so is a NUL character in any string
    (PostgreSQL text cannot hold one; the JSON door lets it through for the webhooks)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=users.MAX_USERNAME)
    password: str = Field(min_length=1, max_length=users.MAX_PASSWORD)


class TextIn(Strict):
    text: Text


def _one_of_two(schema: dict[str, Any]) -> None:
    """`ReplyIn`'s schema: one property exactly, neither with a (null) default."""
    schema.update(minProperties=1, maxProperties=1)
    for prop in schema["properties"].values():
        prop.pop("default", None)


#: What `domain.rich.check` accepts, for `/api/openapi.json` (the check is made there).
RICH_MESSAGE = {
    "description": "A Chatlayer message object: text with optional quick_replies, or an "
                   "attachment (image, video, or a button or generic template). Checked "
                   "against Chatlayer's shapes and limits; delivered unchanged.",
    "example": {"text": "Did that help?", "quick_replies": [
        {"content_type": "text", "title": "Yes", "payload": "YES"},
        {"content_type": "text", "title": "No", "payload": "NO"}]},
}


class ReplyIn(Strict):
    """A reply: `text`, or a rich `message` (`domain.rich`); exactly one of them."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_one_of_two)

    # Neither may be null: absent is how one leaves it out (the default is not shown in
    # the schema: `_one_of_two`). `message` comes first, so that `text` knows of it.
    message: dict[str, Any] = Field(  # type: ignore[assignment]
        default=None, json_schema_extra=RICH_MESSAGE)
    text: Text = Field(default=None, validate_default=True)  # type: ignore[assignment]

    @field_validator("text", mode="wrap")
    @classmethod
    def _text_unless_message(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        """`text` is required, unless a `message` is given (then it must be absent)."""
        if info.data.get("message") is not None:
            if value is not None:
                raise ValueError("give either text or message, not both")
            return None
        if value is None:
            raise ValueError("text (or a rich message) is required")
        return handler(value)


class TransferIn(Strict):
    to: str | None = Field(max_length=users.MAX_USERNAME)


class TicketPatchIn(Strict):
    """A ticket's labels, replacing its set: each trimmed and lower-cased, 1 to 50
    characters, no control character, at most 20 given (duplicates merged)
    (`domain.labels.check_set`, 422 naming `labels` or `labels.N`)."""

    labels: list[Annotated[str, Field(json_schema_extra={
        "pattern": ticket_labels.PATTERN, "maxLength": ticket_labels.MAX_LENGTH})]] = Field(
        max_length=ticket_labels.MAX_PER_TICKET)


class HandbackIn(Strict):
    """Hand a Chatlayer Offloading conversation back to its bot, with an optional
    closing message sent first."""

    closing_message: Annotated[str, Field(max_length=MAX_TEXT)] | None = None


class ResolveIn(Strict):
    closing_message: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    survey: bool = Field(
        default=False,
        description="Send the satisfaction survey after the closing message (a ticket an "
                    "agent took only: 409 for one that would be abandoned)")


API_URL = {"pattern": r"^https?://[^\s/?#]",
           "description": "Chatlayer's API base URL, e.g. https://api.chatlayer.ai "
                          "(chatlayer-offloading)."}
API_TOKEN = {"pattern": r"^[^\r\n\x00]*\S[^\r\n\x00]*$",
             "description": "The bearer token of Chatlayer's API (chatlayer-offloading); "
                            "never shown again."}
HANDBACK_ACTION = {"description": "The conversation action that un-pauses the bot "
                                  '(chatlayer-offloading); null: {"pauseBot": false}.'}


# An integration's fields, the same when created and when changed (all optional: what a
# kind needs is checked by `integrations.create`).
_ChannelUrl = Annotated[str | None, Field(min_length=1, max_length=2000,
                                          json_schema_extra=CHANNEL_URL)]
_VerifyToken = Annotated[str | None, Field(min_length=1, max_length=integrations.MAX_TOKEN)]
_ApiUrl = Annotated[str | None, Field(min_length=1, max_length=2000, json_schema_extra=API_URL)]
_ApiToken = Annotated[str | None, Field(min_length=1, max_length=2000,
                                        json_schema_extra=API_TOKEN)]
_HandbackAction = Annotated[dict[str, Any] | None, Field(json_schema_extra=HANDBACK_ACTION)]


class IntegrationIn(Strict):
    """A new integration: `smartly` needs `channel_url`; `chatlayer-offloading` needs
    `api_url` and `api_token` (`integrations.create`, 422 naming the missing field)."""

    name: str = Field(min_length=1, max_length=integrations.MAX_NAME, json_schema_extra=NAME)
    kind: Literal["smartly", "chatlayer-offloading"] = "smartly"
    channel_url: _ChannelUrl = None
    verify_token: _VerifyToken = None
    api_url: _ApiUrl = None
    api_token: _ApiToken = None
    handback_action: _HandbackAction = None


class IntegrationPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=integrations.MAX_NAME,
                               json_schema_extra=NAME)
    api_url: _ApiUrl = None
    api_token: _ApiToken = None
    handback_action: _HandbackAction = None
    channel_url: _ChannelUrl = None
    verify_token: _VerifyToken = None
    #: What the end user is told (`domain.notices`); null or empty: nothing is sent.
    queue_message: str | None = Field(
        default=None, max_length=notices.MAX_MESSAGE,
        description="Sent when the handover starts; {position} (1 = next) and {wait}.")
    assigned_message: str | None = Field(
        default=None, max_length=notices.MAX_MESSAGE,
        description="Sent when an agent takes the conversation; {agent}.")
    offline_message: str | None = Field(
        default=None, max_length=notices.MAX_MESSAGE,
        description="Sent instead of the queue message outside business hours or while "
                    "no agent is online.")
    business_hours: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"example": BUSINESS_HOURS_EXAMPLE},
        description="Null: always open. timezone (IANA), weekly (mon..sun: lists of "
                    '["HH:MM", "HH:MM"], end after start, "24:00" allowed as end; a day '
                    "not listed is closed), closed_dates (YYYY-MM-DD).")
    first_response_target_seconds: Annotated[
        int, Field(ge=1, le=notices.MAX_TARGET), WHOLE] | None = Field(
        default=None, description="Null: the default, 120.")
    #: The satisfaction survey (`domain.csat`); null: the defaults.
    survey_question: str | None = Field(
        default=None, max_length=csat.MAX_QUESTION,
        description="Asked on resolve with a survey; null or blank: the default in the "
                    "ticket's language.")
    survey_labels: list[Annotated[str, Field(min_length=1, max_length=csat.MAX_LABEL)]] | None = (
        Field(default=None, min_length=5, max_length=5,
              description="The quick replies' titles for the ratings 1 to 5, distinct; "
                          'null: "1 ★" .. "5 ★".'))


class RotateIn(Strict):
    grace_seconds: float | None = Field(default=None, ge=0, le=30 * 24 * 3600)


class TestMessageIn(Strict):
    recipient: str = Field(min_length=1, max_length=500)
    text: Text


#: `users.must_change_password`, as `POST`/`PATCH /api/users` take it.
MUST_CHANGE = "The user must choose a new password before anything else at their next " \
              "sign-in (cleared when they do)."


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=users.MAX_USERNAME,
                          json_schema_extra={"pattern": USERNAME})
    role: Role
    password: str = Field(min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD)
    must_change_password: bool = Field(default=False, description=MUST_CHANGE)


class UserPatch(Strict):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=users.MIN_PASSWORD,
                                 max_length=users.MAX_PASSWORD)
    #: Routing profile (`domain.agents`); null resets to the default.
    max_concurrent: Annotated[int, Field(ge=1, le=1000), WHOLE] | None = None
    skills: list[str] | None = Field(default=None, max_length=agents.MAX_SKILLS)
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    must_change_password: bool | None = Field(default=None, description=MUST_CHANGE)

    def routing(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("max_concurrent", "skills", "display_name")
                if k in self.model_fields_set}


class PasswordChangeIn(Strict):
    """One's own password: the current one, and a new one (8 to 1000 characters, not the
    current one; 422 naming `current` or `new`)."""

    current: str = Field(min_length=1, max_length=users.MAX_PASSWORD)
    new: str = Field(min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD)


class MePatch(Strict):
    status: Literal["online", "away", "offline"] | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=100)


#: `canned.check_shortcut` lowercases and trims it first.
CANNED_SHORTCUT = {"pattern": r"^\s*[A-Za-z0-9_-]{1,50}\s*$",
                   "description": "1 to 50 of a-z, 0-9, _ and - (lowercased); typed as "
                                  "/shortcut in the reply box"}
CannedText = Annotated[str, Field(min_length=1, max_length=4000,
                                  json_schema_extra={"pattern": NOT_BLANK}),
                       AfterValidator(_not_blank)]


class CannedIn(Strict):
    """A canned response (`domain.canned`): shared ones are managed by supervisors and
    admins, personal ones by their owner. `{agent}` and `{end_user}` in the text are
    filled by the console when inserted."""

    shortcut: str = Field(min_length=1, max_length=60, json_schema_extra=CANNED_SHORTCUT)
    text: CannedText
    scope: Literal["shared", "personal"] = "personal"


class CannedPatch(Strict):
    """Change the shortcut or the text (the scope stays)."""

    shortcut: str | None = Field(default=None, min_length=1, max_length=60,
                                 json_schema_extra=CANNED_SHORTCUT)
    text: CannedText | None = None
