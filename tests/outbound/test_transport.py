"""The connect-time check (`outbound.transport`), against a real HTTP server on loopback:
names resolved once and every address checked, no redirects, bounded bodies."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from connector.channels import ChatlayerWebhook, Envelope
from connector.domain.errors import FieldError
from connector.outbound import Refused, check_url_resolved, client, read_bounded
from connector.outbound.addresses import Address
from tests.fakes import QuietServer

pytestmark = pytest.mark.anyio

LOOPBACK = (ip_network("127.0.0.0/8"),)


class Server:
    """Answers GET /redirect with a 302 to /landed, GET /big with 1 MiB, anything else
    200; counts the requests it got."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self._answer()

            def _answer(self) -> None:
                server.paths.append(self.path)
                body = b"x" * (1024 * 1024) if self.path == "/big" else b"{}"
                self.send_response(302 if self.path == "/redirect" else 200)
                if self.path == "/redirect":
                    self.send_header("location", "/landed")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *args: None  # type: ignore[method-assign]  # resets
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def answering(*addresses: str) -> Any:
    """A resolver that answers `addresses` for any name, counting its lookups."""
    async def resolve(host: str, port: int) -> list[Address]:
        resolve.lookups.append(host)  # type: ignore[attr-defined]
        return [ip_address(a) for a in addresses]
    resolve.lookups = []  # type: ignore[attr-defined]
    return resolve


async def test_a_name_resolving_to_loopback_is_refused_at_connect(server: Server) -> None:
    async with client((), timeout=5) as http:
        with pytest.raises(Refused, match=r"refused: localhost resolves to .*loopback"):
            await http.get(f"http://localhost:{server.port}/")
        with pytest.raises(Refused, match=re.escape("refused: 127.0.0.1 is a loopback address")):
            await http.get(f"http://127.0.0.1:{server.port}/")
        with pytest.raises(Refused, match="loopback"):
            await http.get(f"http://2130706433:{server.port}/")  # 127.0.0.1, as a number
    assert server.paths == []


async def test_the_allow_list_lets_loopback_through(server: Server) -> None:
    async with client(LOOPBACK, timeout=5, resolver=answering("127.0.0.1")) as http:
        assert (await http.get(f"http://localhost:{server.port}/a")).status_code == 200
        assert (await http.get(f"http://127.0.0.1:{server.port}/b")).status_code == 200
    assert server.paths == ["/a", "/b"]


async def test_dns_rebinding_is_caught_at_connect_time(server: Server) -> None:
    url = f"http://bot.example:{server.port}/hook"
    # Save time: the name resolves to a public address, so the URL is accepted.
    assert await check_url_resolved(url, "channel_url", (),
                                    answering("93.184.216.34")) == url
    # Send time: it now resolves to loopback, and the connection is refused.
    rebound = answering("127.0.0.1")
    async with client((), timeout=5, resolver=rebound) as http:
        with pytest.raises(Refused,
                           match=re.escape("bot.example resolves to 127.0.0.1, a loopback")):
            await http.post(url, content=b"{}")
    assert rebound.lookups == ["bot.example"]
    assert server.paths == []


async def test_one_refused_address_among_several_refuses(server: Server) -> None:
    async with client((), timeout=5, resolver=answering("93.184.216.34", "10.0.0.5")) as http:
        with pytest.raises(Refused, match=re.escape("10.0.0.5, a private address")):
            await http.get(f"http://mixed.example:{server.port}/")


async def test_the_connection_goes_to_the_checked_address(server: Server) -> None:
    """No second lookup: a name no DNS knows reaches the server at the address the
    checked lookup gave."""
    resolver = answering("127.0.0.1")
    async with client(LOOPBACK, timeout=5, resolver=resolver) as http:
        r = await http.get(f"http://nowhere.invalid:{server.port}/checked")
    assert r.status_code == 200 and server.paths == ["/checked"]
    assert resolver.lookups == ["nowhere.invalid"]


async def test_redirects_are_not_followed(server: Server) -> None:
    async with client(LOOPBACK, timeout=5) as http:
        r = await http.get(f"http://127.0.0.1:{server.port}/redirect")
    assert r.status_code == 302 and server.paths == ["/redirect"]


async def test_bodies_are_read_bounded(server: Server) -> None:
    async with client(LOOPBACK, timeout=5) as http:
        request = http.build_request("GET", f"http://127.0.0.1:{server.port}/big")
        response = await http.send(request, stream=True)
        body = await read_bounded(response, limit=64 * 1024)
    assert len(body) == 64 * 1024
    assert response.is_closed


async def test_save_time_check_resolves_names() -> None:
    with pytest.raises(FieldError) as caught:
        await check_url_resolved("http://db.example/", "api_url", (), answering("10.1.2.3"))
    assert caught.value.field == "api_url"
    assert str(caught.value) == ("refused: db.example resolves to 10.1.2.3, a private address "
                                 "(see CONNECTOR_OUTBOUND_ALLOW_NETWORKS)")
    assert await check_url_resolved("http://db.example/", "api_url",
                                    (ip_network("10.1.2.0/24"),), answering("10.1.2.3"))

    async def nxdomain(host: str, port: int) -> list[Address]:
        raise OSError("Name or service not known")

    # A name that does not resolve now is for the connect-time check to judge.
    assert await check_url_resolved("https://later.example/", "api_url", (), nxdomain)


async def test_a_refused_channel_delivery_fails_for_good(server: Server) -> None:
    async with client((), timeout=5) as http:
        outcome = await ChatlayerWebhook(http, 5).deliver(Envelope(
            f"http://127.0.0.1:{server.port}/hook", "token", "user-1", {"text": "hi"}, "k1"))
    assert outcome.state == "failed"
    assert outcome.error == "refused: 127.0.0.1 is a loopback address"
    assert server.paths == []
