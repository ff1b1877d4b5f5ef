"""The bot platforms the connector takes webhook events from, by name.

Adding a platform is one module with a `Source` subclass (see `base`) and one
line in `SOURCES`: its webhook endpoint, its URL in the integration's JSON and
the writing of its events follow from the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connector.sources.base import Source
from connector.sources.chatlayer import Chatlayer
from connector.sources.chatlayer_offloading import ChatlayerOffloading
from connector.sources.smartly import Smartly

#: Every source served, by name (in this order in integration JSON).
SOURCES: Mapping[str, Source] = {s.name: s for s in (Smartly(), Chatlayer(),
                                                     ChatlayerOffloading())}

#: Body fields that are secrets for any source: kept out of every raw body shown.
SECRET_FIELDS = tuple(dict.fromkeys(f for s in SOURCES.values() for f in s.secret_fields))


def webhook_urls(public_url: str, integration_id: str, key: str | None = None,
                 kind: str = "smartly",
                 sources: Iterable[Source] = SOURCES.values()) -> dict[str, str | None]:
    """Each source's webhook URL for an integration of `kind`, by `Source.url_field`
    (null for the sources that do not serve that kind); a URL that carries the key only
    when `key` is given (it is shown once)."""
    out: dict[str, str | None] = {}
    for s in sources:
        url = s.webhook_url(public_url, integration_id, key) if kind in s.kinds else None
        if url is not None or s.auth != "key" or key is not None:
            out[s.url_field] = url
    return out


__all__ = ["SECRET_FIELDS", "SOURCES", "Source", "webhook_urls"]
