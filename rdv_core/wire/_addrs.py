"""Addresses and address spaces, as docs/PROTOCOL.md section 9 defines them.

An :class:`Addr` is an ``ip:port`` pair formatted exactly as the wire wants it
(``a.b.c.d:port`` or ``[x::y]:port``). An :class:`AddrSpace` is a bit set with
the reference implementation's bit values, so that ``--spaces`` values and event
payloads mean the same thing to every rdv/1 implementation.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from rdv_core.errors import RdvError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddrError(RdvError, ValueError):
    """An address or address-space string does not parse."""


class AddrSpace(enum.IntFlag):
    """A unicast address space, or a set of them (the bit values are the wire's)."""

    INVALID = 0
    PUBLIC4 = 1 << 1
    PUBLIC6 = 1 << 2
    PRIVATE4 = 1 << 3
    PRIVATE6 = 1 << 4
    LINK4 = 1 << 5
    LINK6 = 1 << 6
    LOOPBACK4 = 1 << 7
    LOOPBACK6 = 1 << 8
    NONE = 1 << 31
    #: Every enumerated space. Go's ``^NoSpaces`` also sets unused bits; we keep
    #: only meaningful ones so that ``str()`` stays readable.
    ALL = PUBLIC4 | PUBLIC6 | PRIVATE4 | PRIVATE6 | LINK4 | LINK6 | LOOPBACK4 | LOOPBACK6
    PUBLIC = PUBLIC4 | PUBLIC6
    DEFAULT = PUBLIC4 | PUBLIC6 | PRIVATE4 | PRIVATE6
    LOOPBACK = LOOPBACK4 | LOOPBACK6

    def includes(self, other: AddrSpace) -> bool:
        """True if every space of ``other`` is in this set (and ``other`` is not empty)."""
        return other != AddrSpace.INVALID and (self & other) == other

    def includes_ip(self, ip: IPAddress) -> bool:
        """True if the space of ``ip`` is in this set."""
        return self.includes(space_of(ip))

    @property
    def label(self) -> str:
        """The lower-case name of a single space (``public4``), or a comma list for a set."""
        return format_spaces(self)


#: The single spaces, in bit order, with the names used on command lines and in events.
SINGLE_SPACES: Final[tuple[AddrSpace, ...]] = (
    AddrSpace.PUBLIC4,
    AddrSpace.PUBLIC6,
    AddrSpace.PRIVATE4,
    AddrSpace.PRIVATE6,
    AddrSpace.LINK4,
    AddrSpace.LINK6,
    AddrSpace.LOOPBACK4,
    AddrSpace.LOOPBACK6,
)

_ALIASES: Final[dict[str, AddrSpace]] = {
    "default": AddrSpace.DEFAULT,
    "all": AddrSpace.ALL,
    "public": AddrSpace.PUBLIC,
    "loopback": AddrSpace.LOOPBACK,
    "none": AddrSpace.NONE,
}


# The pure functions of spaces and IPs below are memoized: every attempt asks them about
# the same few addresses dozens of times, and flag arithmetic and ipaddress's properties
# were about a fifth of a loopback attempt's CPU (bench/connect.py). Bounded caches: a
# peer listing many addresses evicts, it cannot grow them.
_CACHE_SIZE: Final = 1024


@functools.lru_cache(maxsize=_CACHE_SIZE)
def allows_direct(spaces: AddrSpace, space: AddrSpace) -> bool:
    """May an address of ``space`` carry a direct conn when ``spaces`` are enabled?

    The one answer for our own self addrs, the peer candidates we dial and the inbound
    conns we keep (docs/PROTOCOL.md section 9): ``NONE`` forbids every direct conn (it
    exists to force the relay), an invalid address never qualifies, any other space only
    when it is enabled.
    """
    return not spaces & AddrSpace.NONE and spaces.includes(space)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def allows_any_direct(spaces: AddrSpace) -> bool:
    """True if some address may go direct under ``spaces`` (else the relay is all there is)."""
    return any(allows_direct(spaces, space) for space in SINGLE_SPACES)


def _single_name(space: AddrSpace) -> str:
    return (space.name or "invalid").lower()


def parse_spaces(text: str) -> AddrSpace:
    """Parse a comma list of space names and aliases (``"loopback4,loopback6"``, ``"none"``).

    Raises:
        AddrError: for an unknown name or an empty list.
    """
    result = AddrSpace.INVALID
    names = [part.strip().lower() for part in text.split(",")]
    if not any(names):
        raise AddrError("empty address space list")
    for name in names:
        if name in _ALIASES:
            result |= _ALIASES[name]
            continue
        for space in SINGLE_SPACES:
            if _single_name(space) == name:
                result |= space
                break
        else:
            known = ", ".join([*(_single_name(s) for s in SINGLE_SPACES), *_ALIASES])
            raise AddrError(f"unknown address space {name!r} (known: {known})")
    if result & AddrSpace.NONE:
        # "none" wins: it exists to force the relay.
        return AddrSpace.NONE
    return result


@functools.lru_cache(maxsize=_CACHE_SIZE)
def format_spaces(spaces: AddrSpace) -> str:
    """Format a set of spaces as a comma list of single names (``none`` for the empty set)."""
    names = [_single_name(s) for s in SINGLE_SPACES if spaces & s]
    return ",".join(names) if names else "none"


_PRIVATE4: Final = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
_PRIVATE6: Final = ipaddress.IPv6Network("fc00::/7")


def unmap(ip: IPAddress) -> IPAddress:
    """Turn an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) into the IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@functools.lru_cache(maxsize=_CACHE_SIZE)
def space_of(ip: IPAddress) -> AddrSpace:
    """Classify an address, in the reference order: invalid, loopback, link, private, public."""
    ip = unmap(ip)
    if ip.is_unspecified or ip.is_multicast:
        return AddrSpace.INVALID
    v4 = isinstance(ip, ipaddress.IPv4Address)
    if ip.is_loopback:
        return AddrSpace.LOOPBACK4 if v4 else AddrSpace.LOOPBACK6
    if ip.is_link_local:
        return AddrSpace.LINK4 if v4 else AddrSpace.LINK6
    if v4:
        if ip == ipaddress.IPv4Address("255.255.255.255"):
            return AddrSpace.INVALID
        if any(ip in net for net in _PRIVATE4):
            return AddrSpace.PRIVATE4
        return AddrSpace.PUBLIC4
    if ip in _PRIVATE6:
        return AddrSpace.PRIVATE6
    # Go's IsGlobalUnicast: everything else that is unicast counts as public.
    return AddrSpace.PUBLIC6


# IP text to object, memoized like the rest (the same few IPs come back all the time;
# errors are not cached, they raise each time).
_ip = functools.lru_cache(maxsize=_CACHE_SIZE)(ipaddress.ip_address)
_ipv4 = functools.lru_cache(maxsize=_CACHE_SIZE)(ipaddress.IPv4Address)
_ipv6 = functools.lru_cache(maxsize=_CACHE_SIZE)(ipaddress.IPv6Address)


def clear_caches() -> None:
    """Empty the memo caches above. They are bounded (at most ``_CACHE_SIZE`` entries each, a
    few hundred KiB in all); tests that measure memory growth per conn clear them first, so
    that a server's caches filling up with its clients' ports is not read as a leak."""
    for memo in (allows_direct, allows_any_direct, format_spaces, space_of, _addr_text, _ip_text):
        memo.cache_clear()
    for parse in (_ip, _ipv4, _ipv6):
        parse.cache_clear()
    _parse_memo.cache_clear()
    _sockaddr_memo.cache_clear()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _addr_text(ip: IPAddress, port: int) -> str:
    """An address as docs/PROTOCOL.md section 9 writes it (memoized, see above)."""
    return f"{_ip_text(ip)}:{port}"


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _ip_text(ip: IPAddress) -> str:
    """The IP part of :func:`_addr_text`, memoized apart: each attempt's port P is new, its
    IPs are not (formatting an IPv6 address costs several microseconds)."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            # Go's netip writes ::ffff:1.2.3.4 (Python 3.11 would say ::ffff:102:304).
            zone = f"%{ip.scope_id}" if ip.scope_id else ""
            return f"[::ffff:{mapped}{zone}]"
        return f"[{ip.compressed}]"
    return str(ip)


def _scope_index(zone: str | None) -> int:
    """An IPv6 zone's interface index (``eth0`` or ``2``); 0 for none or an unknown name."""
    if not zone:
        return 0
    if zone.isdigit():
        return int(zone)
    try:
        return socket.if_nametoindex(zone)
    except OSError:
        return 0  # the connect then fails "Invalid argument", as with no zone at all


@dataclass(frozen=True, slots=True)
class Addr:
    """An IP address and TCP port, formatted as docs/PROTOCOL.md section 9 says.

    Addresses order as the wire sorts them (:meth:`sort_key`): all IPv4 before IPv6,
    then by address bytes, then by port.
    """

    ip: IPAddress
    port: int
    # The text and the hash, computed once: one attempt hashes and formats the same few
    # addresses dozens of times (memos, events, sets), and an ``ipaddress`` hash is
    # ``hash(hex(int(ip)))`` (docs/notes/issue-10-connect-fourth.md). Not part of the value.
    _text: str | None = field(default=None, init=False, repr=False, compare=False)
    _hash: int | None = field(default=None, init=False, repr=False, compare=False)
    _space: AddrSpace | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise AddrError(f"port out of range: {self.port}")

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = _addr_text(self.ip, self.port)
            object.__setattr__(self, "_text", text)
        return text

    def __hash__(self) -> int:
        value = self._hash
        if value is None:
            value = hash((self.ip, self.port))
            object.__setattr__(self, "_hash", value)
        return value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Addr):
            return NotImplemented
        return self.sort_key() < other.sort_key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Addr):
            return NotImplemented
        return self.sort_key() <= other.sort_key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Addr):
            return NotImplemented
        return self.sort_key() > other.sort_key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Addr):
            return NotImplemented
        return self.sort_key() >= other.sort_key()

    @property
    def is_ipv4(self) -> bool:
        """True for an IPv4 address (IPv4-mapped addresses count as IPv4)."""
        return isinstance(unmap(self.ip), ipaddress.IPv4Address)

    @property
    def space(self) -> AddrSpace:
        """The address space of the IP (worked out once: ~30 asks per attempt)."""
        space = self._space
        if space is None:
            space = space_of(self.ip)
            object.__setattr__(self, "_space", space)
        return space

    def unmapped(self) -> Addr:
        """The same address with an IPv4-mapped IP unmapped and any IPv6 zone dropped."""
        ip = unmap(self.ip)
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        return self if ip is self.ip else Addr(ip, self.port)

    def sort_key(self) -> tuple[int, bytes, int]:
        """Wire order: all IPv4 before IPv6, then address bytes, then port."""
        ip = unmap(self.ip)
        return (0 if isinstance(ip, ipaddress.IPv4Address) else 1, ip.packed, self.port)

    def sockaddr(self) -> tuple[str, int] | tuple[str, int, int, int]:
        """The address as a tuple for the socket module (IPv6 keeps its zone)."""
        if isinstance(self.ip, ipaddress.IPv6Address):
            # The socket module takes the zone only as the scope id (the 4th item): in the
            # text alone it was dropped, and a link-local connect failed "Invalid argument".
            return (str(self.ip), self.port, 0, _scope_index(self.ip.scope_id))
        return (str(self.ip), self.port)

    @classmethod
    def parse(cls, text: str) -> Addr:
        """Parse ``a.b.c.d:port`` or ``[x::y]:port``, as :meth:`parse_new` (memoized).

        An attempt parses the same few addresses many times (the ``101``'s headers, the
        lines on direct conns): one shared instance keeps its text and hash computed.
        Failures are not memoized (they raise); the memo is bounded.
        """
        return _parse_memo(text) if cls is Addr else cls.parse_new(text)

    @classmethod
    def parse_new(cls, text: str) -> Addr:
        """Parse ``a.b.c.d:port`` or ``[x::y]:port`` (an IPv6 zone is accepted).

        As Go's ``netip.ParseAddrPort``: IPv6 needs brackets, IPv4 must not have them,
        IPv4 octets have no leading zeros, the port is decimal (leading zeros allowed).

        Raises:
            AddrError: when ``text`` is not such an address.
        """
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise AddrError(f"missing port in address {text!r}")
        significant = port_text.lstrip("0") if port_text else ""
        if (
            not port_text
            or not port_text.isascii()
            or not port_text.isdigit()
            # Bounded before int(): a huge digit string would make int() slow or fail.
            or len(significant) > 5
            or int(significant or "0") > 65535
        ):
            raise AddrError(f"invalid port in address {text!r}")
        port = int(significant or "0")
        try:
            if host.startswith("["):
                if not host.endswith("]"):
                    raise AddrError(f"unbalanced brackets in address {text!r}")
                return cls(_ipv6(host[1:-1]), port)
            if ":" in host:
                raise AddrError(f"IPv6 address without brackets in {text!r}")
            return cls(_ipv4(host), port)
        except ValueError as exc:
            if isinstance(exc, AddrError):
                raise
            raise AddrError(f"invalid IP in address {text!r}") from exc

    @classmethod
    def from_sockaddr(cls, sockaddr: tuple[object, ...]) -> Addr:
        """Build from a socket-module address tuple, unmapping ``::ffff:a.b.c.d``.

        Memoized like :meth:`parse`: every conn of an attempt names the same few socket
        addresses (ours on P, the server's, the peer's), a dozen times per attempt.

        Raises:
            AddrError: when the tuple is not an IP socket address.
        """
        if cls is Addr:
            try:
                return _sockaddr_memo(tuple(sockaddr))
            except TypeError:  # unhashable parts: not memoized (and maybe not an address)
                pass
        return cls._from_sockaddr_new(sockaddr)

    @classmethod
    def _from_sockaddr_new(cls, sockaddr: tuple[object, ...]) -> Addr:
        if len(sockaddr) < 2:
            raise AddrError(f"invalid socket address {sockaddr!r}")
        host = str(sockaddr[0]).split("%", 1)[0]
        port = sockaddr[1]
        if not isinstance(port, int):
            raise AddrError(f"invalid socket address {sockaddr!r}")
        try:
            ip = _ip(host)
        except ValueError as exc:
            raise AddrError(f"invalid socket address {sockaddr!r}") from exc
        return cls(ip, port).unmapped()


def sort_addrs(addrs: Iterable[Addr]) -> list[Addr]:
    """De-duplicate and sort addresses in wire order (after unmapping and dropping zones)."""
    unique = {a.unmapped() for a in addrs}
    return sorted(unique, key=Addr.sort_key)


#: Probe addresses per space: the OS tells which local address it would use to reach them.
_PROBES: Final[dict[AddrSpace, str]] = {
    AddrSpace.PUBLIC4: "1.1.1.1",
    AddrSpace.PRIVATE4: "192.168.0.1",
    AddrSpace.LINK4: "169.254.0.1",
    AddrSpace.LOOPBACK4: "127.0.0.1",
    AddrSpace.PUBLIC6: "2400::1",
    AddrSpace.PRIVATE6: "fd00::1",
    AddrSpace.LINK6: "fe80::1",
    AddrSpace.LOOPBACK6: "::1",
}


def _probe_local_ip(probe: str) -> IPAddress | None:
    family = socket.AF_INET6 if ":" in probe else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            # A UDP connect only asks the routing table: no packet leaves the machine.
            sock.connect((probe, 9))
            local = sock.getsockname()[0]
    except OSError:
        return None
    ip = ipaddress.ip_address(str(local).split("%", 1)[0])
    return None if ip.is_unspecified else ip


def default_sources() -> list[IPAddress]:
    """The source addresses of this machine's default routes (IPv4, IPv6), where it has them.

    What the kernel picks for a public destination: the uplink a socket bound to the
    wildcard uses (docs/LAB-NOTES.md section 13). No packet is sent.
    """
    found = [
        _probe_local_ip(_PROBES[AddrSpace.PUBLIC4]),
        _probe_local_ip(_PROBES[AddrSpace.PUBLIC6]),
    ]
    return [ip for ip in found if ip is not None]


def self_addrs(spaces: AddrSpace, port: int) -> list[Addr]:
    """Our own candidate addresses on ``port``, one per enabled address space.

    For each enabled space, ask the OS which local address it would use to reach a
    probe address of that space, and keep the result only if its own space is enabled.
    """
    if not allows_any_direct(spaces):
        return []
    found: list[Addr] = []
    for space, probe in _PROBES.items():
        if not spaces & space:
            continue
        ip = _probe_local_ip(probe)
        if ip is not None and allows_direct(spaces, space_of(ip)):
            found.append(Addr(ip, port))
    return sort_addrs(found)


@functools.lru_cache(maxsize=1024)
def _parse_memo(text: str) -> Addr:
    return Addr.parse_new(text)


@functools.lru_cache(maxsize=1024)
def _sockaddr_memo(sockaddr: tuple[object, ...]) -> Addr:
    return Addr._from_sockaddr_new(sockaddr)
