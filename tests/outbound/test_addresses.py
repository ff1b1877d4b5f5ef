"""What outbound calls may connect to (`outbound.addresses`), and the save-time URL
checks (`outbound.urls.check_url`)."""

from __future__ import annotations

import re
from ipaddress import ip_address, ip_network

import pytest

from connector.domain.errors import FieldError
from connector.outbound import check_url, parse_networks, refusal
from connector.outbound.addresses import literal

LOOPBACK = (ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("10.0.0.5", "private"), ("172.16.3.4", "private"), ("172.31.255.255", "private"),
    ("192.168.1.1", "private"), ("fd12:3456::1", "private (unique local)"),
    ("fc00::1", "private (unique local)"),
    ("100.64.0.1", "shared (carrier-grade NAT)"), ("100.127.255.254", "shared"),
    ("169.254.169.254", "the cloud metadata"), ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("239.1.2.3", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("192.0.0.8", "reserved"),
    ("192.0.2.1", "documentation"), ("2001:db8::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    # IPv4 in IPv6 forms: judged as the IPv4 address they carry.
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.5", "private"),
    ("::ffff:169.254.169.254", "the cloud metadata"), ("64:ff9b::a00:5", "private"),
    ("2002:a00:5::1", "private"),
])
def test_refused_ranges(address: str, kind: str) -> None:
    why = refusal(ip_address(address))
    assert why is not None and kind in why, why


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1",
                                     "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


def test_message_names_address_and_kind() -> None:
    assert refusal(ip_address("10.0.0.5")) == "10.0.0.5 is a private address"
    assert refusal(ip_address("::ffff:10.0.0.5")) == "::ffff:a00:5 (10.0.0.5) is a private address"
    assert (refusal(ip_address("10.0.0.5"), (), "db.internal")
            == "db.internal resolves to 10.0.0.5, a private address")


def test_allow_list() -> None:
    assert refusal(ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal(ip_address("::ffff:127.0.0.1"), LOOPBACK) is None  # mapped, judged as v4
    assert refusal(ip_address("10.0.0.5"), LOOPBACK) is not None
    assert refusal(ip_address("::1"), LOOPBACK) is not None  # IPv6 loopback is not 127/8
    assert refusal(ip_address("::1"), (ip_network("::1/128"),)) is None
    assert refusal(ip_address("10.1.2.3"), (ip_network("10.1.2.0/24"),)) is None
    assert refusal(ip_address("10.1.3.3"), (ip_network("10.1.2.0/24"),)) is not None


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("::1", "::1"), ("127.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("10.1", "10.0.0.1"),
    ("fe80::1%eth0", "fe80::1"),
])
def test_literals_in_every_form_a_resolver_reads(host: str, address: str) -> None:
    assert literal(host) == ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "localhost", "deadbeef", "1.2.3.4.5",
                                  "0x", "a.b"])
def test_names_are_not_literals(host: str) -> None:
    assert literal(host) is None


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "https://10.0.0.5:8443/x",
    "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
    "http://0x7f.1/", "http://169.254.169.254/latest/meta-data/", "http://[fd00::1]/",
    "http://0.0.0.0:9/", "http://100.64.0.1/",
])
def test_check_url_refuses_address_literals(url: str) -> None:
    with pytest.raises(FieldError) as caught:
        check_url(url, "channel_url")
    assert caught.value.field == "channel_url"
    assert str(caught.value).startswith("refused: ")
    assert "CONNECTOR_OUTBOUND_ALLOW_NETWORKS" in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "javascript:alert(1)", "http://",
                                 "http:///x", "https://example.com:99999/", "http://[/",
                                 "http://example.com:0/", "example.com/hook", "file:///etc/passwd"])
def test_check_url_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(FieldError) as caught:
        check_url(url, "api_url")
    assert caught.value.field == "api_url"


def test_check_url_passes_names_public_addresses_and_allowed_ones() -> None:
    for url in ("https://example.com/hook", "http://8.8.8.8:8080/x", "https://[2606:4700::1]/"):
        assert check_url(url, "channel_url") == url
    assert check_url("http://127.0.0.1:9/x", "channel_url", LOOPBACK) == "http://127.0.0.1:9/x"


def test_parse_networks() -> None:
    assert parse_networks(["127.0.0.0/8", "fd00::/8", "10.0.0.5"]) == (
        ip_network("127.0.0.0/8"), ip_network("fd00::/8"), ip_network("10.0.0.5/32"))
    with pytest.raises(ValueError, match=re.escape("did you mean 10.0.0.0/8")):
        parse_networks(["10.0.0.1/8"])
    with pytest.raises(ValueError, match="'nope' is not a CIDR network"):
        parse_networks(["nope"])
