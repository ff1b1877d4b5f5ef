"""The client address of a request: one answer for the sign-in throttle and the access log.

It is the TCP peer, unless the peer is one of the proxies the operator lists in
`CONNECTOR_TRUSTED_PROXIES` (none by default). Only then is `X-Forwarded-For`
read, from the right: each trusted proxy appends the address it was connected
from, so the rightmost hop that is not itself a trusted proxy is the client;
anything to its left was written by the client and is ignored. An entry that is
not an IP address ends the walk at the trusted proxy that passed it on. No
other forwarded header (`Forwarded`, `X-Real-IP`, `X-Forwarded-Proto`) is read,
and uvicorn's own proxy-header handling is off (`cli.server_options`).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.types import Scope

Network = IPv4Network | IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or CIDR networks; ValueError naming a bad entry."""
    networks = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ip_network(entry))
        except ValueError:
            try:
                meant = f"; did you mean {ip_network(entry, strict=False)}?"
            except ValueError:
                meant = " (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)"
            raise ValueError(f"{entry!r} is not an IP address or network{meant}") from None
    return tuple(networks)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's form of an IPv4 peer
    return address


def _trusted(address: IPv4Address | IPv6Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    """The client address of an HTTP or WebSocket request (see the module's docstring)."""
    client = scope.get("client")
    peer = client[0] if client else "-"
    if not trusted:
        return peer
    parsed = _address(peer)
    if not _trusted(parsed, trusted):
        return peer
    hops = [hop.strip() for name, value in scope.get("headers", ())
            if name == b"x-forwarded-for" for hop in value.decode("latin-1").split(",")]
    found = str(parsed)
    for hop in reversed([h for h in hops if h]):
        address = _address(hop)
        if address is None:
            break
        found = str(address)
        if not _trusted(address, trusted):
            break
    return found
