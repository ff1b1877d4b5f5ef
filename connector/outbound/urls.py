"""Save-time checks of a URL we will call: `check_url` (its form and any address
literal in it) and `check_url_resolved` (also every address its host resolves to).

Both raise `FieldError(field, ...)`, which the API answers 422 naming the field
and the CLI prints. Connect-time checks are the transport's (`outbound.transport`):
a name may resolve elsewhere by the time we send.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import ip_address
from urllib.parse import urlsplit

import anyio
import httpx

from connector.domain.errors import FieldError
from connector.outbound.addresses import Address, Network, literal, refusal

#: Resolves a host name (and port) to its addresses; injected in tests.
Resolver = Callable[[str, int], Awaitable[list[Address]]]

#: How long a save-time lookup may take.
RESOLVE_SECONDS = 5.0


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to (in a worker thread, as the OS resolver does it),
    in the resolver's order, without repeats. OSError when it does not resolve."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[Address] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    return out


def split(url: str, field: str) -> tuple[str, int]:
    """The host (as the HTTP client sends to it) and port of an absolute http(s) URL."""
    host = ""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number from 0 to 65535
        if parts.scheme in {"http", "https"}:
            parsed = httpx.URL(url)
            # `host` decodes the name (refusing an IDNA-invalid one); the client connects
            # to `raw_host`, its ASCII (punycode) form.
            host = parsed.raw_host.decode("ascii") if parsed.host else ""
    except (ValueError, httpx.InvalidURL):  # e.g. "http://[", an IDNA-invalid host
        host = ""
    if not host:
        raise FieldError(field, "must be an absolute http(s) URL")
    if port == 0:
        raise FieldError(field, "must not use port 0")
    return host, port or (443 if parts.scheme == "https" else 80)


def check_url(url: str, field: str, allow: Sequence[Network] = ()) -> str:
    """`url` if it is an absolute http(s) URL with a host and a valid port whose host,
    when it is an address, may be connected to (`addresses.refusal`); else FieldError."""
    host, _ = split(url, field)
    address = literal(host)
    why = refusal(address, allow) if address is not None else None
    if why is not None:
        raise FieldError(field, f"refused: {why} (see CONNECTOR_OUTBOUND_ALLOW_NETWORKS)")
    return url


async def check_url_resolved(url: str, field: str, allow: Sequence[Network] = (),
                             resolver: Resolver = resolve) -> str:
    """`check_url`, and every address a host name resolves to now may be connected to.
    Call it before the transaction that saves the URL (it waits on DNS).

    A name that does not resolve now (no DNS where the connector runs, a record not
    made yet, a lookup slower than `RESOLVE_SECONDS`) is accepted: this check is early
    feedback, the transport's check at each connection is the guard.
    """
    check_url(url, field, allow)
    host, port = split(url, field)
    if literal(host) is not None:
        return url
    try:
        with anyio.fail_after(RESOLVE_SECONDS):
            addresses = await resolver(host, port)
    except (OSError, TimeoutError):
        return url
    for address in addresses:
        why = refusal(address, allow, host)
        if why is not None:
            raise FieldError(field, f"refused: {why} (see CONNECTOR_OUTBOUND_ALLOW_NETWORKS)")
    return url
