"""What the race dials and how it names what it sees: candidates, their origins, their routes.

A peer address from the ``101`` becomes one or more dials (docs/PROTOCOL.md section 17):
one through the kernel's default route, plus one per extra uplink for public addresses
(:mod:`rdv_core.client._uplinks`), each at the address itself or, behind NAT64, at its
synthesized IPv6 form (:mod:`rdv_core.wire._nat64`). Inbound conns that came through the
NAT64 are named by the IPv4 address they stand for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rdv_core.client._uplinks import Uplink
from rdv_core.events import Candidate, Origin
from rdv_core.wire import (
    Addr,
    AddrSpace,
    allows_direct,
    format_spaces,
    nat64_embedded,
    nat64_synthesize,
)


@dataclass(frozen=True, slots=True)
class DialRoute:
    """One dial of a peer address: where the SYN goes, from which uplink, and how we say it."""

    target: Addr
    uplink: Uplink | None
    via: str | None


def dial_routes(
    addr: Addr,
    uplinks: Sequence[Uplink],
    *,
    bound_only: bool,
    nat64: ipaddress.IPv6Network | None,
) -> list[DialRoute]:
    """The dials of peer address ``addr``.

    Args:
        addr: the peer address, as the server gave it.
        uplinks: extra uplinks (or, when ``bound_only``, the only ones allowed).
        bound_only: ``--interface``/``--source`` were given: every dial is bound to one.
        nat64: the NAT64 prefix our server conn went through, if any.
    """
    target = nat64_synthesize(nat64, addr) if nat64 is not None and addr.is_ipv4 else addr
    through = "NAT64" if target is not addr else None
    same_family = [u for u in uplinks if u.is_ipv4 == target.is_ipv4]
    routes: list[DialRoute] = []
    if not bound_only:
        routes.append(DialRoute(target, None, through))
        if addr.space not in (AddrSpace.PUBLIC4, AddrSpace.PUBLIC6):
            # The kernel routes non-public addresses to the LAN they are on by itself.
            return routes
    for uplink in same_family:
        via = f"{uplink.device} {uplink.ip}" + (", NAT64" if through else "")
        routes.append(DialRoute(target, uplink, via))
    return routes


def plan_dials(
    peer_addrs: Sequence[Addr],
    spaces: AddrSpace,
    new_id: Callable[[], int],
    *,
    uplinks: Sequence[Uplink],
    bound_only: bool,
    nat64: ipaddress.IPv6Network | None,
) -> Iterator[tuple[Candidate, DialRoute | None, str]]:
    """Each candidate of the race's dials: with its route, or (None) why it is skipped."""
    origins = infer_origins(peer_addrs)
    for addr in peer_addrs:
        if not allows_direct(spaces, addr.space):
            candidate = new_candidate(new_id(), addr, origins[addr])
            yield candidate, None, space_not_enabled(candidate)
            continue
        if addr.space == AddrSpace.LINK6 and not getattr(addr.ip, "scope_id", None):
            zone, why = link_zone(uplinks if bound_only else ())
            if zone is None:
                yield new_candidate(new_id(), addr, origins[addr]), None, why
                continue
            # The wire drops zones (PROTOCOL section 9): this machine's one link names it.
            zoned = Addr(ipaddress.IPv6Address(f"{addr.ip}%{zone}"), addr.port)
            yield (
                new_candidate(new_id(), addr, origins[addr], zone),
                DialRoute(zoned, None, zone),
                "",
            )
            continue
        routes = dial_routes(addr, uplinks, bound_only=bound_only, nat64=nat64)
        if not routes:  # --interface/--source allow no uplink of this family
            yield new_candidate(new_id(), addr, origins[addr]), None, "no allowed uplink for it"
        for route in routes:
            yield new_candidate(new_id(), addr, origins[addr], route.via), route, ""


def link_zone(allowed: Sequence[Uplink] = ()) -> tuple[str | None, str]:
    """The interface a peer's link-local candidate is dialled on, or (None) why none is.

    A link-local address means nothing without its link, and the peer's zone never
    crosses the wire. Without one, connect() failed "Invalid argument" (``unreachable``,
    errno 22). The link is known when this machine has one interface with an IPv6
    link-local address (or ``--interface``/``--source`` name one); with several, the
    peer could be on any of them.
    """
    links = sorted({u.device for u in allowed} or _link_local_interfaces())
    if len(links) == 1:
        return links[0], ""
    if not links:
        return None, "a link-local address needs a link, and no interface here has IPv6"
    return None, (
        f"a link-local address names no interface, and this machine has several "
        f"({', '.join(links)}): name the peer's link with --interface"
    )


def _link_local_interfaces() -> set[str]:
    """Interfaces with an IPv6 link-local address (Linux's /proc/net/if_inet6; scope 0x20)."""
    try:
        with open("/proc/net/if_inet6") as f:
            rows = [line.split() for line in f]
    except OSError:
        return set()
    return {row[5] for row in rows if len(row) == 6 and row[3] == "20" and row[5] != "lo"}


def inbound_addr(remote: Addr, nat64: ipaddress.IPv6Network | None) -> Addr:
    """The peer address an inbound conn stands for (its IPv4 one when it came via NAT64)."""
    return nat64_embedded(nat64, remote) or remote


def new_candidate(id_: int, addr: Addr, origin: Origin, via: str | None = None) -> Candidate:
    """The event form of a candidate."""
    return Candidate(id_, str(addr), space_name(addr), origin, via)


def space_name(addr: Addr) -> str:
    """The address space of ``addr`` as an event field (``loopback4``, ``invalid``)."""
    space = addr.space
    return format_spaces(space) if space != AddrSpace.INVALID else "invalid"


def space_not_enabled(candidate: Candidate) -> str:
    """Why ``candidate`` may not go direct (see :func:`~rdv_core.wire.allows_direct`)."""
    return f"address space {candidate.space} is not enabled"


def infer_origins(peer_addrs: Sequence[Addr]) -> dict[Addr, Origin]:
    """Guess which peer address is the server-observed one.

    ``Rdv-Peer-Addrs`` merges the peer's self addrs (all on its port P) with its
    observed addr, so an IPv4 address whose port differs from the most common port is
    the observed one (a NAT changed the port). When ports agree, the observed address
    coincides with a self address or cannot be told apart: it is reported as ``self``.
    """
    if not peer_addrs:
        return {}
    # A plain dict, not a Counter (its set-up is costly for two or three addresses,
    # issue 10): the same counts in the same order, so the same ties.
    ports: dict[int, int] = {}
    for a in peer_addrs:
        ports[a.port] = ports.get(a.port, 0) + 1
    non_public_ports = {a.port for a in peer_addrs if a.space != AddrSpace.PUBLIC4}

    def rank(port: int) -> tuple[int, bool]:
        # Ties go to a port that a non-public address uses: NATs rewrite public ones.
        return ports[port], port in non_public_ports

    best = max(ports, key=rank)
    return {a: ("observed" if a.port != best and a.is_ipv4 else "self") for a in peer_addrs}
