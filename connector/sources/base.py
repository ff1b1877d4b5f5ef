"""What a bot platform is to the connector: a `Source` of webhook events.

A source names its webhook (`/hooks/<segment>/<integration id>`), says how a
request proves it comes from the integration's bot, and turns a decoded body
into an `Inbound` that says, in platform-neutral terms, what the event does.
Everything else (the endpoint, the writer, the integration's URLs) is the same
for every source.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.ingest.inbound import Inbound, Result

#: How a webhook request is authenticated: `key`, the integration's key in the query
#: (`?key=...`, checked before the body is read; the URL carries it, so it is shown only
#: when the key is, at creation and rotation); `token`, the integration's verify token
#: in the body's `Source.token_field`.
Auth = Literal["key", "token"]

#: Integers are kept within 64 bits (a larger one cannot be written back as JSON).
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Id = str | Int64


class Loose(BaseModel):
    """Base of the payload models: fields we act on are checked; any others are accepted
    and not copied into the model (the raw body keeps them), so validation costs only
    what is used."""

    model_config = ConfigDict(extra="ignore")


class Source:
    """A bot platform posting webhook events. Subclasses set the class attributes and
    implement `parse`; one instance serves every request."""

    #: Stored as `inbound_event.source`.
    name: ClassVar[str]
    #: The platform's name as people read it.
    label: ClassVar[str]
    #: The webhook path segment: `/hooks/<segment>/<integration id>`.
    segment: ClassVar[str]
    auth: ClassVar[Auth]
    #: With `auth = "token"`: the body field holding the verify token.
    token_field: ClassVar[str] = ""
    #: Body fields that are secrets: `parse` leaves them out of `Inbound.raw` (the body
    #: as stored), and they are dropped from every stored body shown (`SECRET_FIELDS`).
    secret_fields: ClassVar[tuple[str, ...]] = ()
    #: The integration kinds (`Integration.kind`) whose events it takes; a call for an
    #: integration of another kind is refused like one with a wrong key.
    kinds: ClassVar[tuple[str, ...]] = ("smartly",)
    #: It also answers `GET` on its webhook: the platform's health check (`health`).
    health_check: ClassVar[bool] = False

    def bot_of(self, inbound: Inbound) -> str | None:
        """The platform's bot an accepted event came from, when one integration serves
        one bot (bound to the first event's bot; another bot's events are refused)."""
        return None

    def answer(self, inbound: Inbound, result: Result) -> tuple[int, Any]:
        """The status and JSON body answered for an accepted event (`result`: what
        became of it, committed)."""
        return 200 if inbound.known else 202, {
            "status": result.status, "event_id": result.event_id,
            "ticket_id": result.ticket_id, "ticket_opened": result.opened}

    def parse(self, integration_id: str, body: Any, raw: bytes) -> Inbound:
        """Validate a decoded JSON body (`raw` is its bytes) into an `Inbound`, or raise
        `BadInput` naming every bad field. Called for authenticated requests only."""
        raise NotImplementedError

    @property
    def url_field(self) -> str:
        """The name of its webhook URL in an integration's JSON."""
        return f"{self.name}_webhook_url"

    def webhook_url(self, public_url: str, integration_id: str,
                    key: str | None = None) -> str | None:
        """The URL to give the platform; None when it carries a key that is not known."""
        url = f"{public_url}/hooks/{self.segment}/{integration_id}"
        if self.auth == "token":
            return url
        return None if key is None else f"{url}?key={key}"
