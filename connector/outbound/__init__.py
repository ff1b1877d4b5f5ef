"""Outbound calls that cannot be turned against us, and how they are signed.

- `addresses`: which addresses may be connected to (`refusal`), and the allow list's
  networks (`CONNECTOR_OUTBOUND_ALLOW_NETWORKS`, `parse_networks`).
- `urls`: save-time checks of a URL we will call: `check_url` (form and address
  literals), `check_url_resolved` (also what its host resolves to); FieldError naming
  the field.
- `transport`: the connect-time check: `client()` (the one HTTP client for outbound
  calls: no redirects, no environment proxies), `Refused` (a failed delivery, never
  retried), `read_bounded` (answers' bodies read up to `MAX_BODY`).
- `signing`: Standard Webhooks signatures (`new_secret`, `sign`, `headers`, `verify`).
"""

from __future__ import annotations

from connector.outbound.addresses import Network, parse_networks, refusal
from connector.outbound.transport import MAX_BODY, Refused, client, read_bounded
from connector.outbound.urls import check_url, check_url_resolved

__all__ = ["MAX_BODY", "Network", "Refused", "check_url", "check_url_resolved", "client",
           "parse_networks", "read_bounded", "refusal"]
