"""The egress guard: which addresses an outgoing request may reach (SSRF protection).

By default only globally routable unicast addresses are reachable. Loopback, private,
link-local, CGNAT (100.64/10), multicast, unspecified, documentation/reserved ranges and the
cloud metadata addresses are refused, in every spelling: IPv4 in decimal, octal or hex parts
(``0x7f.1``, ``2130706433``, ``0177.0.0.1``), IPv6, and IPv4 embedded in IPv6 (mapped
``::ffff:127.0.0.1``, NAT64, 6to4). The check runs on the address actually connected to, after
DNS resolution (see ``transport.py``), so a public name that resolves to an internal address
is refused too. An allow-list of host names (``api.internal``, ``*.corp.example``) or CIDRs
(``10.0.0.0/8``, ``127.0.0.1``) opens them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from spokehub.integrations.errors import EgressDenied

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Metadata services answer on these even where the ranges above would not catch them (the
# AWS IPv6 one lies in fc00::/7, but naming it makes the refusal's reason precise).
METADATA = {
    ipaddress.ip_address("169.254.169.254"): "cloud metadata",
    ipaddress.ip_address("169.254.170.2"): "cloud metadata",
    ipaddress.ip_address("fd00:ec2::254"): "cloud metadata",
    ipaddress.ip_address("100.100.100.200"): "cloud metadata",
}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling ``inet_aton`` accepts, or None if ``text`` is not one.

    One to four dot-separated parts, each decimal, octal (leading 0) or hex (0x); the last
    part fills the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` too).
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        value = _number(part)
        if value is None:
            return None
        values.append(value)
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def _number(part: str) -> int | None:
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:], 16) if len(lowered) > 2 else 0
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered[1:], 8)
        if lowered.isdigit():
            return int(lowered)
    except ValueError:
        return None
    return None


def parse_address(host: str) -> IPAddress | None:
    """The IP address a URL host names literally (brackets and zone ids allowed), or None."""
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
    return parse_ipv4(text)


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is internal (a short reason), or None when it is public."""
    inner = unwrap(address)
    for candidate in (address, inner):
        if candidate in METADATA:
            return METADATA[candidate]
    checks = (
        ("unspecified", inner.is_unspecified),
        ("loopback", inner.is_loopback),
        ("link-local", inner.is_link_local),
        ("multicast", inner.is_multicast),
        ("CGNAT", isinstance(inner, ipaddress.IPv4Address) and inner in _CGNAT),
        ("private", inner.is_private),
        ("reserved", inner.is_reserved or not inner.is_global),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which internal destinations are allowed anyway.

    Args:
        hosts: host names allowed whatever they resolve to (``*.corp.example`` matches
            subdomains).
        networks: CIDRs (or single addresses) allowed.

    Example:
        >>> policy = EgressPolicy.of(["127.0.0.1", "api.internal"])
        >>> policy.check("api.internal", ipaddress.ip_address("10.1.2.3"))  # allowed
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, allow: Iterable[str] = ()) -> EgressPolicy:
        """Build a policy from allow-list entries: CIDRs/addresses, or host names."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in allow:
            text = entry.strip().lower()
            if not text:
                raise ValueError("an empty egress allow-list entry; give a host name or a CIDR")
            literal = parse_address(text.split("/", 1)[0])
            if literal is not None:
                suffix = text.split("/", 1)[1] if "/" in text else str(literal.max_prefixlen)
                networks.append(ipaddress.ip_network(f"{literal}/{suffix}", strict=False))
            else:
                hosts.add(text.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        if name in self.hosts:
            return True
        return any(h.startswith("*.") and name.endswith(h[1:]) for h in self.hosts)

    def address_allowed(self, address: IPAddress) -> bool:
        inner = unwrap(address)
        return any(
            a in net for net in self.networks for a in {address, inner} if a.version == net.version
        )

    def check(self, host: str, address: IPAddress) -> None:
        """Raise ``EgressDenied`` unless ``address`` (which ``host`` led to) may be reached."""
        reason = refusal(address)
        if reason is None or self.host_allowed(host) or self.address_allowed(address):
            return
        raise EgressDenied(host, str(address), reason)

    def check_host(self, host: str) -> None:
        """Refuse a host that is itself an internal IP literal, before anything is resolved."""
        address = parse_address(host)
        if address is not None:
            self.check(host, address)
