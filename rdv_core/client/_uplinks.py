"""This machine's ways out: one per usable local address (docs/LAB-NOTES.md section 13).

A laptop on wifi and LTE, or a server with two ISPs, has two default routes; the kernel
sends everything through the one of lowest metric unless a socket is bound to the
other interface. The race dials public candidates from each extra uplink too, binding
the dial to that interface (``SO_BINDTODEVICE``, unprivileged since Linux 5.7) and its
address, so a direct path that exists only over the non-default uplink is found.
``--interface``/``--source`` restrict everything (server conn, self addresses, dials)
to the uplinks named.

Linux only (``SIOCGIFADDR`` and ``/proc/net/if_inet6``); elsewhere the list is empty and
the kernel's default route is the only way out, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from rdv_core.wire import Addr, AddrSpace, IPAddress, allows_direct, default_sources, space_of

_SIOCGIFFLAGS: Final = 0x8913
_SIOCGIFADDR: Final = 0x8915
_IFF_UP: Final = 0x1
_IFF_LOOPBACK: Final = 0x8
_IFF_RUNNING: Final = 0x40
#: ``SO_BINDTODEVICE`` (``socket`` lacks the name on some Python builds).
SO_BINDTODEVICE: Final = getattr(socket, "SO_BINDTODEVICE", 25)
#: The calling thread's view of its network namespace: ``/proc/net`` is the thread-group
#: leader's, so a thread that entered a namespace (the lab's ``run_in``, a library user's
#: ``setns``) read another namespace's routes there and found no uplink, or the wrong ones.
_PROC_NET: Final = "/proc/thread-self/net" if os.path.exists("/proc/thread-self") else "/proc/net"
#: IPv6 address flags of ``/proc/net/if_inet6`` that make an address unusable as a source.
_IFA_F_TENTATIVE_DADFAILED_DEPRECATED: Final = 0x40 | 0x08 | 0x20
#: At most this many uplinks per family: each extra one dials every public candidate again.
MAX_UPLINKS: Final = 4


@dataclass(frozen=True, slots=True)
class Uplink:
    """A local address and the interface it belongs to."""

    device: str
    ip: IPAddress

    @property
    def is_ipv4(self) -> bool:
        """True for an IPv4 address."""
        return isinstance(self.ip, ipaddress.IPv4Address)

    def __str__(self) -> str:
        return f"{self.device} {self.ip}"


def _flags(sock: socket.socket, name: str) -> int:
    packed = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, struct.pack("256s", name.encode()[:15]))
    return int(struct.unpack_from("H", packed, 16)[0])


def _ipv4_of(sock: socket.socket, name: str) -> ipaddress.IPv4Address | None:
    try:
        packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None  # no IPv4 address on this interface
    return ipaddress.IPv4Address(packed[20:24])


def _ipv6_addrs() -> list[tuple[str, ipaddress.IPv6Address]]:
    found = []
    with contextlib.suppress(OSError), open(f"{_PROC_NET}/if_inet6") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 6:
                continue
            raw, _, _, _, flags, name = parts
            if int(flags, 16) & _IFA_F_TENTATIVE_DADFAILED_DEPRECATED:
                continue
            found.append((name, ipaddress.IPv6Address(bytes.fromhex(raw))))
    return found


def _default_route_devices() -> tuple[set[str], set[str]]:
    """The interfaces that have an IPv4 and an IPv6 default route (Linux ``/proc/net``)."""
    v4: set[str] = set()
    v6: set[str] = set()
    with contextlib.suppress(OSError), open(f"{_PROC_NET}/route") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[1] == "00000000" and parts[7] == "00000000":
                v4.add(parts[0])
    with contextlib.suppress(OSError), open(f"{_PROC_NET}/ipv6_route") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 10 and parts[1] == "00" and int(parts[0], 16) == 0:
                v6.add(parts[9])
    return v4, v6


def local_uplinks() -> list[Uplink]:
    """Every address of an up, running interface with a default route of its family.

    An interface without one (a container bridge, a host-only network) reaches only its
    own networks, which the kernel routes to anyway: it is no way out.
    """
    if sys.platform != "linux":
        return []
    found: list[Uplink] = []
    usable: set[str] = set()
    default4, default6 = _default_route_devices()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                flags = _flags(sock, name)
            except OSError:
                continue
            if flags & _IFF_LOOPBACK or not (flags & _IFF_UP and flags & _IFF_RUNNING):
                continue
            usable.add(name)
            v4 = _ipv4_of(sock, name)
            if v4 is not None and name in default4 and _routable(v4):
                found.append(Uplink(name, v4))
    found += [
        Uplink(n, ip) for n, ip in _ipv6_addrs() if n in usable and n in default6 and _routable(ip)
    ]
    return found


def _routable(ip: IPAddress) -> bool:
    return space_of(ip) not in (
        AddrSpace.INVALID,
        AddrSpace.LOOPBACK4,
        AddrSpace.LOOPBACK6,
        AddrSpace.LINK4,
        AddrSpace.LINK6,
    )


#: Link-local spaces: never an uplink, whatever ``--source`` asks.
_LINK_SPACES: Final = (AddrSpace.LINK4, AddrSpace.LINK6)

#: The spaces an uplink's address can be in: :func:`_routable` leaves out the others.
_UPLINK_SPACES: Final = (
    AddrSpace.PUBLIC4,
    AddrSpace.PUBLIC6,
    AddrSpace.PRIVATE4,
    AddrSpace.PRIVATE6,
)


def uplinks_serve(spaces: AddrSpace) -> bool:
    """Can an extra uplink be of any use to an attempt with ``spaces``? Only when a space
    an uplink's address can be in may carry a direct conn."""
    return any(allows_direct(spaces, space) for space in _UPLINK_SPACES)


def select_uplinks(
    uplinks: Sequence[Uplink], interfaces: Sequence[str], sources: Sequence[str]
) -> list[Uplink]:
    """The uplinks ``--interface``/``--source`` allow (all when both are empty).

    Raises:
        ValueError: an interface or a source address that this machine does not have,
            naming what it has.
    """
    chosen = list(uplinks)
    if interfaces:
        known = {u.device for u in uplinks}
        for name in interfaces:
            if name not in known:
                have = ", ".join(sorted(known)) or "none"
                raise ValueError(f"no usable interface {name!r} here (usable: {have})")
        chosen = [u for u in chosen if u.device in interfaces]
    if sources:
        wanted: set[IPAddress] = set()
        for text in sources:
            try:
                wanted.add(ipaddress.ip_address(text))
            except ValueError:
                raise ValueError(f"--source {text!r} is not an IP address") from None
        link = sorted((ip for ip in wanted if space_of(ip) in _LINK_SPACES), key=str)
        if link:
            # A link-local address is no way out (docs/PROTOCOL.md 17.3): "no usable local
            # address fe80::2%eth0" read as if the address were missing.
            have = ", ".join(str(u) for u in chosen) or "none"
            raise ValueError(
                f"--source {', '.join(map(str, link))} is link-local: a link-local address "
                "is not an uplink (it reaches no server); give a public or private address "
                f"of an interface with a default route (usable: {have})"
            )
        missing = wanted - {u.ip for u in chosen}
        if missing:
            have = ", ".join(str(u) for u in chosen) or "none"
            raise ValueError(
                f"no usable local address {', '.join(map(str, sorted(missing, key=str)))} "
                f"(usable: {have})"
            )
        chosen = [u for u in chosen if u.ip in wanted]
    return chosen


def extra_paths(uplinks: Sequence[Uplink], default_sources: Sequence[IPAddress]) -> list[Uplink]:
    """The uplinks that are not the kernel's default way out for their family.

    ``default_sources`` are the source addresses the kernel picks for its default routes
    (see :func:`rdv_core.wire.self_addrs`); their interfaces are reached without binding.
    """
    default_devices = {u.device for u in uplinks if u.ip in default_sources}
    out: list[Uplink] = []
    for family_v4 in (True, False):
        extra = [u for u in uplinks if u.is_ipv4 is family_v4 and u.device not in default_devices]
        # One address per interface and family: a second one would take the same route.
        seen: set[str] = set()
        for u in extra:
            if u.device not in seen:
                seen.add(u.device)
                out.append(u)
    return out[: 2 * MAX_UPLINKS]


def bind_to_uplink(sock: socket.socket, uplink: Uplink, port: int) -> None:
    """Bind ``sock`` to ``uplink``'s interface and address, port ``port``.

    The interface binding is what makes the kernel use that uplink's route; where it is
    refused (before Linux 5.7 without CAP_NET_RAW), the address binding still lets
    source-based policy routing (``ip rule from ADDR``) pick the right one.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, uplink.device.encode())
    if uplink.is_ipv4:
        sock.bind((str(uplink.ip), port))
    else:
        sock.bind((str(uplink.ip), port, 0, 0))


def uplink_addrs(uplinks: Sequence[Uplink], spaces: AddrSpace, port: int) -> list[Addr]:
    """Self addresses for the uplinks' addresses whose space is enabled."""
    return [Addr(u.ip, port) for u in uplinks if allows_direct(spaces, space_of(u.ip))]


@dataclass(frozen=True, slots=True)
class LocalPaths:
    """The ways out one attempt uses (docs/LAB-NOTES.md section 13).

    Attributes:
        uplinks: the extra uplinks public candidates are also dialled from, or, when
            ``bound_only``, the only uplinks anything may use.
        bound_only: ``--interface``/``--source`` restricted the attempt to ``uplinks``.
    """

    uplinks: tuple[Uplink, ...] = ()
    bound_only: bool = False

    def self_addrs(self, spaces: AddrSpace, default: Sequence[Addr], port: int) -> list[Addr]:
        """Our self addresses: ``default`` (one per space) plus every uplink's, deduplicated;
        only the allowed uplinks' when ``bound_only``."""
        extra = uplink_addrs(self.uplinks, spaces, port)
        found = extra if self.bound_only else [*default, *extra]
        return list(dict.fromkeys(found))

    def server_uplink(self, ipv4: bool) -> Uplink | None:
        """The uplink the server conn leaves from (None: the default route).

        Raises:
            ValueError: ``bound_only`` and no allowed uplink has that family.
        """
        if not self.bound_only:
            return None
        for uplink in self.uplinks:
            if uplink.is_ipv4 == ipv4:
                return uplink
        raise ValueError(f"no allowed uplink has an IPv{4 if ipv4 else 6} address")


def plan_paths(interfaces: Sequence[str], sources: Sequence[str]) -> LocalPaths:
    """The paths of an attempt: all extra uplinks, or only those the options allow.

    Raises:
        ValueError: see :func:`select_uplinks`.
    """
    found = local_uplinks()
    if interfaces or sources:
        return LocalPaths(tuple(select_uplinks(found, interfaces, sources)), True)
    return LocalPaths(tuple(extra_paths(found, default_sources())))
