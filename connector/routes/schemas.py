"""Request bodies of the agent API. Unknown fields are refused (422 naming them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from connector.tickets import MAX_TEXT


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_not_blank)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class TextIn(Strict):
    text: Text


class TransferIn(Strict):
    to: str | None = Field(max_length=100)


class ResolveIn(Strict):
    closing_message: Annotated[str, Field(max_length=MAX_TEXT)] | None = None


class IntegrationIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    channel_url: str = Field(min_length=1, max_length=2000)
    verify_token: str | None = Field(default=None, min_length=1, max_length=500)


class IntegrationPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    channel_url: str | None = Field(default=None, min_length=1, max_length=2000)
    verify_token: str | None = Field(default=None, min_length=1, max_length=500)


class RotateIn(Strict):
    grace_seconds: float | None = Field(default=None, ge=0, le=30 * 24 * 3600)


class TestMessageIn(Strict):
    recipient: str = Field(min_length=1, max_length=500)
    text: Text


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=100)
    role: str
    password: str = Field(min_length=8, max_length=1000)


class UserPatch(Strict):
    role: str | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1000)
