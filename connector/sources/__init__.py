"""The bot platforms the connector takes webhook events from, by name.

Adding a platform is one module with a `Source` subclass (see `base`) and one
line in `SOURCES`: its webhook endpoint, its URL in the integration's JSON and
the writing of its events follow from the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connector.sources.base import Source
from connector.sources.chatlayer import Chatlayer
from connector.sources.smartly import Smartly

#: Every source served, by name (in this order in integration JSON).
SOURCES: Mapping[str, Source] = {s.name: s for s in (Smartly(), Chatlayer())}

#: Body fields that are secrets for any source: kept out of every raw body shown.
SECRET_FIELDS = tuple(dict.fromkeys(f for s in SOURCES.values() for f in s.secret_fields))


def webhook_urls(public_url: str, integration_id: str, key: str | None = None,
                 sources: Iterable[Source] = SOURCES.values()) -> dict[str, str]:
    """Each source's webhook URL for an integration, by `Source.url_field`; a URL that
    carries the key only when `key` is given (it is shown once)."""
    urls = ((s.url_field, s.webhook_url(public_url, integration_id, key)) for s in sources)
    return {field: url for field, url in urls if url is not None}


__all__ = ["SECRET_FIELDS", "SOURCES", "Source", "webhook_urls"]
