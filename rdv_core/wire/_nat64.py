"""NAT64 (RFC 6146, RFC 6052): reaching IPv4 candidates from an IPv6-only host.

Behind NAT64 a host has no IPv4 at all; it reaches an IPv4 address ``a.b.c.d`` at the
IPv6 address ``PREFIX::a.b.c.d`` and the translator does the rest (DNS64 gives such
addresses for names). The rdv server's ``101`` tells a peer behind NAT64 two things that
prove it is there (docs/PROTOCOL.md section 17.2, LAB-NOTES section 13): our conn to the
server is IPv6, yet the server observed an IPv4 address. The server's IPv6 address is
then itself a synthesized one, and its first 96 bits are the prefix. With that prefix,
the peer's IPv4 candidates are dialled at their synthesized addresses, and inbound conns
from the translator are the peer's IPv4 addresses again.

Only ``/96`` prefixes are understood (the well-known ``64:ff9b::/96`` and almost every
network-specific one); RFC 6052's shorter ones put a reserved octet inside the address.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from rdv_core.wire._addrs import Addr

#: The only prefix length understood (see the module docstring).
PREFIX_LENGTH: Final = 96


def nat64_prefix(local: Addr, server: Addr, observed: Addr | None) -> ipaddress.IPv6Network | None:
    """The NAT64 prefix our server conn went through, or None when it went through none.

    Args:
        local: our end of the server conn.
        server: the server's end of it, as we connected to it.
        observed: the address the server saw (``Rdv-Observed-Addr``), if it sent one.
    """
    local, server = local.unmapped(), server.unmapped()
    if observed is None or local.is_ipv4 or server.is_ipv4 or not observed.unmapped().is_ipv4:
        return None
    return ipaddress.IPv6Network((int(server.ip) >> 32 << 32, PREFIX_LENGTH))


def nat64_synthesize(prefix: ipaddress.IPv6Network, addr: Addr) -> Addr:
    """The address at which ``addr`` (IPv4) is reached through the NAT64 of ``prefix``."""
    v4 = addr.unmapped().ip
    assert isinstance(v4, ipaddress.IPv4Address)
    return Addr(ipaddress.IPv6Address(int(prefix.network_address) | int(v4)), addr.port)


def nat64_embedded(prefix: ipaddress.IPv6Network | None, addr: Addr) -> Addr | None:
    """The IPv4 address ``addr`` stands for when it is inside ``prefix``, else None."""
    if prefix is None or addr.is_ipv4:
        return None
    ip = addr.ip
    if not isinstance(ip, ipaddress.IPv6Address) or ip not in prefix:
        return None
    return Addr(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), addr.port)
