"""What a domain action answers when it refuses: the kind of refusal, never an HTTP status.

The web layer turns each kind into its answer in one place (`connector.web.errors`).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on. `detail` holds named facts about it (such as
    `field`, the input at fault, or `assignee`, who holds a ticket already taken)."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class Invalid(DomainError):
    """The input breaks a rule; the message says which (and names the field)."""


class FieldError(Invalid):
    """One field's value breaks a rule; the message is about the value alone."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
        self.field = field


class NotFound(DomainError):
    """The thing asked for does not exist."""


class Forbidden(DomainError):
    """The actor may not see, or may not do, this."""


class Conflict(DomainError):
    """The thing is not in a state that allows this (or changed meanwhile)."""
