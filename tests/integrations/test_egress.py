"""The egress guard: an address matrix refused without a connection, allowed when listed."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import httpcore
import pytest

from spokehub.integrations import (
    ClientStatusError,
    ConnectionFailed,
    EgressDenied,
    EgressPolicy,
    HttpConnector,
    InProcessHostState,
)
from spokehub.integrations.egress import parse_address, parse_ipv4, refusal
from tests.integrations.conftest import aio
from tests.integrations.scripted_server import Answer, ScriptedServer

NAMES = {
    "internal.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "both-private.test": ["10.0.0.5", "192.168.0.5"],
    "v6-private.test": ["fd12:3456::1"],
}


def resolver(host: str, port: int) -> list[str]:
    """The test's DNS: names to fixed addresses, anything else unknown."""
    try:
        return NAMES[host]
    except KeyError:
        raise OSError(f"unknown test host {host}") from None


class Recording(httpcore.AsyncNetworkBackend):
    """Records every address a connection is opened to; never touches the network."""

    def __init__(self) -> None:
        self.connects: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        raise httpcore.ConnectError(f"recorded a connection to {host}")


# (URL host, the address it really means, why it is refused)
MATRIX = [
    ("127.0.0.1", "127.0.0.1", "loopback"),
    ("127.1", "127.0.0.1", "loopback"),
    ("127.9.8.7", "127.9.8.7", "loopback"),
    ("0x7f.1", "127.0.0.1", "loopback"),
    ("0x7f000001", "127.0.0.1", "loopback"),
    ("2130706433", "127.0.0.1", "loopback"),
    ("017700000001", "127.0.0.1", "loopback"),
    ("0177.0.0.1", "127.0.0.1", "loopback"),
    ("127.000.000.001", "127.0.0.1", "loopback"),
    ("[::1]", "::1", "loopback"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
    ("[::ffff:7f00:1]", "::ffff:127.0.0.1", "loopback"),
    ("[0:0:0:0:0:ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
    ("[2002:7f00:1::]", "2002:7f00:1::", "loopback"),
    ("internal.test", "127.0.0.1", "loopback"),
    ("0.0.0.0", "0.0.0.0", "unspecified"),
    ("0", "0.0.0.0", "unspecified"),
    ("[::]", "::", "unspecified"),
    ("10.0.0.1", "10.0.0.1", "private"),
    ("172.16.0.1", "172.16.0.1", "private"),
    ("192.168.1.1", "192.168.1.1", "private"),
    ("both-private.test", "10.0.0.5", "private"),
    ("v6-private.test", "fd12:3456::1", "private"),
    ("100.64.0.1", "100.64.0.1", "CGNAT"),
    ("169.254.169.254", "169.254.169.254", "cloud metadata"),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254", "cloud metadata"),
    ("2852039166", "169.254.169.254", "cloud metadata"),
    ("[::ffff:169.254.169.254]", "::ffff:169.254.169.254", "cloud metadata"),
    ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe", "cloud metadata"),
    ("metadata.test", "169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "169.254.170.2", "cloud metadata"),
    ("[fd00:ec2::254]", "fd00:ec2::254", "cloud metadata"),
    ("169.254.1.1", "169.254.1.1", "link-local"),
    ("[fe80::1]", "fe80::1", "link-local"),
    ("224.0.0.1", "224.0.0.1", "multicast"),
    ("[ff02::1]", "ff02::1", "multicast"),
    ("255.255.255.255", "255.255.255.255", "private"),
    ("198.18.0.1", "198.18.0.1", "private"),
]
# Spellings httpx itself will not send; the guard refuses them before httpx sees them.
UNSENDABLE = {"0177.0.0.1", "127.000.000.001"}


def _connector(allow: tuple[str, ...], network: Recording) -> HttpConnector:
    return HttpConnector(
        allow=allow,
        resolver=resolver,
        state=InProcessHostState(),
        network=(network, None),
    )


def test_the_matrix_is_large_enough() -> None:
    assert len(MATRIX) >= 30


@pytest.mark.parametrize(("host", "address", "reason"), MATRIX)
@aio
async def test_refused_without_a_connection(host: str, address: str, reason: str) -> None:
    network = Recording()
    conn = _connector((), network)
    with pytest.raises(EgressDenied) as caught:
        await conn.get(f"http://{host}:8080/latest/meta-data/")
    assert network.connects == []
    assert caught.value.reason == reason
    assert ipaddress.ip_address(caught.value.address) == ipaddress.ip_address(address)
    assert "allow" in str(caught.value)  # the message says how to open it


@pytest.mark.parametrize(("host", "address", "reason"), MATRIX)
@aio
async def test_allowed_when_allow_listed(host: str, address: str, reason: str) -> None:
    network = Recording()
    conn = _connector((address,), network)
    expected: type[Exception] = ClientStatusError if host in UNSENDABLE else ConnectionFailed
    with pytest.raises(expected):
        await conn.get(f"http://{host}:8080/")
    if host not in UNSENDABLE:
        (connected,) = network.connects
        assert ipaddress.ip_address(connected) == ipaddress.ip_address(address)


@aio
async def test_a_host_name_can_be_allow_listed() -> None:
    network = Recording()
    conn = _connector(("*.test",), network)
    with pytest.raises(ConnectionFailed):
        await conn.get("http://metadata.test/")
    assert network.connects == ["169.254.169.254"]


@aio
async def test_a_public_address_is_reached() -> None:
    network = Recording()
    conn = _connector((), network)
    with pytest.raises(ConnectionFailed):
        await conn.get("http://93.184.216.34/")
    assert network.connects == ["93.184.216.34"]


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f.1:{port}/",
        "http://2130706433:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://internal.test:{port}/",
        "http://[fd00:ec2::254]/",
    ],
)
@aio
async def test_every_redirect_is_checked(target: str) -> None:
    # The first hop is a real server on 127.0.0.2 (allow-listed); it redirects elsewhere.
    with ScriptedServer("127.0.0.2") as server, ScriptedServer() as victim:
        location = target.format(port=victim.port)
        server.answer(Answer(302, b"", headers={"Location": location}))
        conn = HttpConnector(allow=("127.0.0.2",), resolver=resolver, state=InProcessHostState())
        with pytest.raises(EgressDenied):
            await conn.get(server.url("/start"))
        assert len(server.requests) == 1
        assert victim.connections == 0
        conn.close()


@aio
async def test_an_allowed_redirect_is_followed() -> None:
    with ScriptedServer("127.0.0.2") as server, ScriptedServer() as target:
        server.answer(Answer(307, b"", headers={"Location": target.url("/there")}))
        conn = HttpConnector(allow=("127.0.0.0/8",), state=InProcessHostState())
        answer = await conn.get(server.url("/start"))
        assert answer.status == 200
        assert answer.url == target.url("/there")
        assert [r.path for r in target.requests] == ["/there"]
        conn.close()


def test_address_parsing() -> None:
    assert parse_ipv4("1.2.3") == ipaddress.ip_address("1.2.0.3")
    assert parse_ipv4("0x") == ipaddress.ip_address("0.0.0.0")
    for bad in ("1.2.3.4.5", "256.1.1.1", "1.2.3.256", "08.1.1.1", "a.b.c.d", "", "1..2", "0xzz"):
        assert parse_ipv4(bad) is None, bad
    assert parse_address("[fe80::1%eth0]") == ipaddress.ip_address("fe80::1")
    assert parse_address("[nonsense:]") is None
    assert parse_address("example.com") is None
    assert refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert refusal(ipaddress.ip_address("2606:4700:4700::1111")) is None


def test_allow_list_entries() -> None:
    policy = EgressPolicy.of(["10.0.0.0/8", "api.internal", "::1"])
    assert policy.host_allowed("API.internal.")
    assert not policy.host_allowed("other.internal")
    assert policy.address_allowed(ipaddress.ip_address("10.9.9.9"))
    assert policy.address_allowed(ipaddress.ip_address("::ffff:10.1.1.1"))  # mapped form too
    assert not policy.address_allowed(ipaddress.ip_address("11.0.0.1"))
    with pytest.raises(ValueError, match="empty"):
        EgressPolicy.of([" "])
