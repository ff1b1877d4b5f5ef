"""Which addresses we may connect to: the one rule for every outbound call.

An address is refused when it is not a public unicast address: loopback,
private (RFC 1918, IPv6 unique local), shared (carrier-grade NAT), link-local
(including the cloud metadata address 169.254.169.254), multicast, unspecified,
documentation, benchmarking and other reserved ranges. An IPv4 address written
in IPv6 form (`::ffff:10.0.0.5`, NAT64 `64:ff9b::a00:5`, 6to4 `2002:a00:5::`)
is judged as the IPv4 address it carries. A network the operator lists in
`CONNECTOR_OUTBOUND_ALLOW_NETWORKS` is allowed whatever its kind.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

#: The refused ranges, most specific first, each with what it is called in an error.
REFUSED: tuple[tuple[Network, str], ...] = tuple((ip_network(n), why) for n, why in (
    ("169.254.169.254/32", "the cloud metadata address"),
    ("0.0.0.0/8", "an unspecified address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "a reserved address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "a reserved address"),
    ("64:ff9b:1::/48", "a private address"),
    ("100::/64", "a reserved address"),
    ("2001:db8::/32", "a documentation address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a reserved (site-local) address"),
    ("ff00::/8", "a multicast address"),
))

_NAT64 = ip_network("64:ff9b::/96")
#: What `inet_aton` (and so the resolver the HTTP client uses) reads as an IPv4 address:
#: `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`.
_INET_ATON = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """CIDR networks (or single addresses); ValueError naming a bad entry."""
    out = []
    for value in values:
        try:
            out.append(ip_network(value.strip()))
        except (ValueError, TypeError, AttributeError):
            try:
                meant = f"; did you mean {ip_network(value.strip(), strict=False)}?"
            except (ValueError, TypeError, AttributeError):
                meant = " (e.g. 127.0.0.0/8, 10.1.2.0/24, fd00::/8)"
            raise ValueError(f"{value!r} is not a CIDR network{meant}") from None
    return tuple(out)


def literal(host: str) -> Address | None:
    """The address `host` denotes without a DNS lookup, in any form a resolver would
    read as one (`[::1]`, `127.1`, `2130706433`, `0x7f.0.0.1`), or None for a name."""
    text = host.strip("[]")
    try:
        return ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if _INET_ATON.match(text):
        try:
            return IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def effective(address: Address) -> Address:
    """The address actually reached: the IPv4 address inside an IPv6 form of one."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: Address, allow: Sequence[Network] = (), host: str | None = None,
            ) -> str | None:
    """Why `address` may not be connected to ("10.0.0.5 is a private address"; with the
    `host` name it came from, "db.internal resolves to 10.0.0.5, a private address"), or
    None when it may: a public unicast address, or one inside an `allow` network."""
    reached = effective(address)
    if any(a in network for a in {address, reached} for network in allow
           if a.version == network.version):
        return None
    what = next((why for network, why in REFUSED
                 if reached.version == network.version and reached in network), None)
    if what is None and not reached.is_global:  # whatever the table does not name
        what = "a reserved address"
    if what is None:
        return None
    shown = str(address) if reached == address else f"{address} ({reached})"
    return f"{host} resolves to {shown}, {what}" if host else f"{shown} is {what}"


__all__ = ["REFUSED", "Address", "Network", "effective", "literal", "parse_networks", "refusal"]
