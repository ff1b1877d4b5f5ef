"""The connect-time check: an httpx client whose every connection goes to an address
`addresses.refusal` allows.

`GuardedBackend` is an httpcore network backend: at each new connection it
resolves the host once, checks every address it got, and connects to those
addresses themselves, so no second lookup can answer differently (a name
re-pointed at an internal address after its URL was saved, DNS rebinding). TLS
is still verified against the host name (httpcore gives the origin's name to
`start_tls`, for SNI and the certificate). A refused address raises `Refused`,
which channels turn into a failed delivery, never retried.

`client()` is the one way to make the HTTP client for outbound calls: redirects
are not followed, proxies from the environment are not used (a proxy would make
the connection for us, past this check), and `read_bounded` reads at most
`MAX_BODY` bytes of an answer.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import anyio
import httpcore
import httpx

from connector.outbound.addresses import Network, literal, refusal
from connector.outbound.urls import Resolver, resolve

#: Most bytes of an answer's body we read; the rest is left unread.
MAX_BODY = 64 * 1024
DEFAULT_LIMITS = httpx.Limits()


class Refused(httpx.TransportError):
    """A connection to an address `addresses.refusal` refuses; its message says which
    and why. Never worth a retry: the same URL will be refused again."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to allowed addresses (see the module's docstring), through `inner`."""

    def __init__(self, allow: Sequence[Network] = (), resolver: Resolver = resolve,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow = tuple(allow)
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int, seconds: float | None) -> list[str]:
        """The addresses to connect to for `host`, each checked; Refused if any is not
        allowed, httpcore.ConnectError if the name does not resolve."""
        address = literal(host)
        if address is not None:
            found = [address]
        else:
            try:
                with anyio.fail_after(seconds):
                    found = await self.resolver(host, port)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
            except OSError as exc:
                raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
            if not found:
                raise httpcore.ConnectError(f"{host} does not resolve")
        for each in found:
            why = refusal(each, self.allow, None if address is not None else host)
            if why is not None:
                raise Refused(f"refused: {why}")
        return [str(each) for each in found]

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        options = list(socket_options or ())
        error: Exception | None = None
        for address in await self.addresses(host, port, timeout):
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address,
                                                    options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, as a resolver's caller would
        assert error is not None
        raise error

    async def connect_unix_socket(
            self, path: str, timeout: float | None = None,  # noqa: ASYNC109
            socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("refused: outbound calls do not use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (HTTP/1.1, TLS verified, no proxy), connecting through a
    `GuardedBackend`."""

    def __init__(self, allow: Sequence[Network] = (), *, resolver: Resolver = resolve,
                 limits: httpx.Limits = DEFAULT_LIMITS,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        super().__init__(limits=limits)
        # httpx takes no network backend, so its pool is made again with ours, as
        # httpx makes it (ssl context, limits, HTTP/1.1 only).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # SSL_CERT_FILE / SSL_CERT_DIR honoured
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, http1=True, http2=False,
            network_backend=GuardedBackend(allow, resolver, inner))


def client(allow: Sequence[Network] = (), *, timeout: float, max_connections: int = 100,
           resolver: Resolver = resolve) -> httpx.AsyncClient:
    """The HTTP client for every outbound call (channels, APIs, event webhooks)."""
    limits = httpx.Limits(max_connections=max_connections)
    return httpx.AsyncClient(
        transport=GuardedTransport(allow, resolver=resolver, limits=limits),
        timeout=timeout, follow_redirects=False, trust_env=False, limits=limits,
        # A compressed answer could expand far beyond what `read_bounded` means to read.
        headers={"Accept-Encoding": "identity"})


async def read_bounded(response: httpx.Response, limit: int = MAX_BODY) -> bytes:
    """At most `limit` bytes of a streamed `response`'s body (as sent: the client asks
    for no compression), then the response is closed; what is beyond is never read."""
    out = bytearray()
    try:
        async for chunk in response.aiter_raw():
            out += chunk
            if len(out) >= limit:
                break
    finally:
        await response.aclose()
    return bytes(out[:limit])
