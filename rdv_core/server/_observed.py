"""The address a client connects from, as the server reports it (``Rdv-Observed-Addr``).

docs/PROTOCOL.md section 8: by default the TCP peer address of the request, with
``::ffff:a.b.c.d`` unmapped. Behind a reverse proxy that address is the proxy's, so
the client's address must come from forwarding headers, but only when the request
really comes from a proxy the operator trusts: anyone else could forge them.

An observed-address function takes the TCP peer address (None when unknown) and a
case-insensitive header getter, and returns the address to report, or None to omit
the header (the client then warns that p2p across NATs will likely fail).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable
from typing import Final

from rdv_core.server import _deploy_hints as hints
from rdv_core.wire import Addr, AddrError, IPAddress, unmap

HeaderGetter = Callable[[str], str | None]
"""Returns a header's value (case-insensitive name), or None: every line of it joined with
``", "`` (:meth:`rdv_core.wire.Head.get_joined`), so that a proxy's appended
``X-Forwarded-For`` line is read, not only the client's own first one."""

ObservedAddrFunc = Callable[[Addr | None, HeaderGetter], Addr | None]
"""``(tcp_peer, get_header) -> observed address or None``."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


#: Forwarding headers from outside ``--trust-proxy`` are warned of at most once a minute.
_IGNORED: Final = hints.Throttle()


def peer_address(remote: Addr | None, get_header: HeaderGetter) -> Addr | None:
    """The default: the TCP peer address, unmapped; forwarding headers are ignored."""
    if remote is None:
        return None
    remote = remote.unmapped()
    _ignored(remote, get_header)
    return remote


def _ignored(remote: Addr, get_header: HeaderGetter) -> None:
    """Warn of forwarding headers that are not believed: a reverse proxy left out of
    ``--trust-proxy`` (or no ``--trust-proxy`` at all) told every client the proxy's address,
    and the log said nothing (server/_deploy_hints.py). A client may send them too: the
    words are conditional and the warning comes once a minute."""
    if get_header("X-Forwarded-For") or get_header("X-Real-IP"):
        hints.warn(_IGNORED, hints.FORWARDED_IGNORED, remote.ip)


def transport_peer_addr(transport: asyncio.BaseTransport) -> Addr | None:
    """The TCP peer address of a transport (IPv4-mapped unmapped), or None if unknown."""
    peername = transport.get_extra_info("peername")
    if not isinstance(peername, tuple):
        return None
    try:
        return Addr.from_sockaddr(peername)
    except (AddrError, ValueError):
        return None


def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip().split("%", 1)[0]
    try:
        return unmap(ipaddress.ip_address(text))
    except ValueError:
        return None


def _parse_hop(text: str) -> tuple[IPAddress | None, int | None]:
    """One ``X-Forwarded-For`` element: ``ip``, ``ip:port``, ``[v6]`` or ``[v6]:port``."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return _parse_ip(text[1:-1]), None
    if text.count(":") == 1 or text.startswith("["):
        try:
            addr = Addr.parse(text)
        except AddrError:
            return None, None
        return unmap(addr.ip), addr.port
    return _parse_ip(text), None


def _parse_port(text: str) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None


def _network(text: str) -> IPNetwork:
    """A CIDR string as a network; one with host bits set (``10.0.0.1/8``) is refused.

    Taken as its network (``10.0.0.0/8``), a typo for one address (``10.0.0.1/32``) widened
    the trust to sixteen million without a word; which one was meant only the operator knows.
    """
    if "," in text:  # RDV_ARGS="--trust-proxy 10.0.0.0/8,192.168.0.0/16" in a unit file
        raise ValueError(f"{text.strip()!r}: give the networks as separate words, not a list")
    net = ipaddress.ip_network(text.strip(), strict=False)
    if net.prefixlen == 0:
        return net  # refused by the caller with its own reason
    given = ipaddress.ip_interface(text.strip()).ip
    if given != net.network_address:
        raise ValueError(
            f"{text.strip()} has host bits set: for the network write {net}, "
            f"for the one address {given}/{given.max_prefixlen}"
        )
    return net


class TrustedProxies:
    """Observed address from forwarding headers, honoured only from trusted proxy networks.

    For a request whose TCP peer is inside one of ``networks``:

    - ``X-Forwarded-For``: walking from the right, the first hop that is not itself a
      trusted proxy is the client. Its port comes from the hop itself (``ip:port``) or
      from ``X-Forwarded-Port``, which must carry the *client's source port* (nginx:
      ``proxy_set_header X-Forwarded-Port $remote_port;``). A one-value port header is
      used only when the client is the last hop; a list is matched hop by hop.
    - otherwise ``X-Real-IP`` with ``X-Real-Port`` (or ``X-Forwarded-Port``).
    - without usable headers the address is unknown (None): the proxy's own address
      would only mislead the client.

    Requests from anywhere else get their TCP peer address; their headers are ignored.
    """

    __slots__ = ("_hints", "networks")

    def __init__(self, networks: Iterable[str | IPNetwork]) -> None:
        """Build from CIDR strings (``10.0.0.0/8``, ``::1/128``, or a bare IP).

        Raises:
            ValueError: for a string that is not a network, one with host bits set
                (``10.0.0.1/8``), or a network of every address (``0.0.0.0/0``, ``::/0``).
        """
        self.networks: tuple[IPNetwork, ...] = tuple(
            n if not isinstance(n, str) else _network(n) for n in networks
        )
        for net in self.networks:
            if net.prefixlen == 0:
                # No proxy network is the whole Internet: every client could then name any
                # address as its own, pick its own lobby caps' key, and aim the doctor's
                # dial-back (docs/PROTOCOL.md section 15.1) anywhere.
                raise ValueError(
                    f"{net} trusts every client: each could name any address as its own "
                    "(and have the server dial it back); name your balancers' networks"
                )
        self._hints = hints.Throttle()

    def trusts(self, ip: IPAddress) -> bool:
        """True if ``ip`` is inside a trusted network."""
        ip = unmap(ip)
        return any(ip.version == net.version and ip in net for net in self.networks)

    def __call__(self, remote: Addr | None, get_header: HeaderGetter) -> Addr | None:
        """The observed address for a request (see the class docstring)."""
        if remote is None:
            return None
        remote = remote.unmapped()
        if not self.trusts(remote.ip):
            _ignored(remote, get_header)
            return remote
        observed = self._from_headers(get_header)
        if observed is None:
            # A proxy that forwards no client: every client it carries would only warn.
            hints.warn(self._hints, hints.NO_CLIENT_NAMED, remote.ip)
        return observed

    def _from_headers(self, get_header: HeaderGetter) -> Addr | None:
        forwarded_for = get_header("X-Forwarded-For")
        if forwarded_for:
            return self._from_forwarded_for(forwarded_for, get_header("X-Forwarded-Port"))
        real_ip = get_header("X-Real-IP")
        if real_ip:
            ip = _parse_ip(real_ip)
            port_text = get_header("X-Real-Port") or get_header("X-Forwarded-Port") or ""
            port = _parse_port(port_text.split(",")[-1])
            if ip is None or port is None:
                return None
            return Addr(ip, port)
        return None

    def _from_forwarded_for(self, forwarded_for: str, port_header: str | None) -> Addr | None:
        hops = [_parse_hop(part) for part in forwarded_for.split(",")]
        ports = [p.strip() for p in port_header.split(",")] if port_header else []
        for index in range(len(hops) - 1, -1, -1):
            ip, port = hops[index]
            if ip is None:
                # A hop we cannot read: anything to its left is unverifiable.
                return None
            if self.trusts(ip) and index > 0:
                continue
            if port is None:
                if len(ports) == len(hops):
                    port = _parse_port(ports[index])
                elif len(ports) == 1 and index == len(hops) - 1:
                    port = _parse_port(ports[0])
            if port is None:
                return None
            return Addr(ip, port)
        return None


def make_observed_addr(trusted: Iterable[str] = ()) -> ObservedAddrFunc:
    """The default observed-address function, honouring forwarding headers from ``trusted``.

    Raises:
        ValueError: for a bad CIDR.
    """
    networks = list(trusted)
    if not networks:
        return peer_address
    return TrustedProxies(networks)
