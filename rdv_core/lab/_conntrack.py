"""Read a lab router's conntrack table and find the ports its NAT could not keep.

A port-preserving NAT keeps a LAN host's source port unless the translated tuple is taken.
The dialer's SYNs to the accepter's public address leave short-lived conntrack entries in the
accepter's router (A:pA -> R_B:pB); a SYN of B's leaving inside one cannot keep B's port, and
the router maps it to another one for that 4-tuple (a port-preservation failure, RFC 4787
section 4.1): the peer then dials the wrong port and the race falls back to the relay
(docs/LAB-NOTES.md section 11, "port clash"). This module finds such remaps so the lab can say
so instead of printing only "relay".

The table is read by ``cat /proc/net/nf_conntrack`` run *inside* the router's namespace: a
thread that did setns still sees the thread-group leader's /proc/net.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from rdv_core.lab._lab import Lab
from rdv_core.lab._netns import LabError
from rdv_core.lab._spec import NatKind
from rdv_core.wire import Addr

#: Where the kernel lists a namespace's conntrack entries (nf_conntrack's procfs view).
CONNTRACK_PROC: Final = "/proc/net/nf_conntrack"


@dataclass(frozen=True, slots=True)
class Tuple:
    """One direction of a conntrack entry."""

    src: str
    dst: str
    sport: int
    dport: int


@dataclass(frozen=True, slots=True)
class ConntrackEntry:
    """One TCP conntrack entry: the original direction, the expected reply, the TCP state."""

    state: str
    orig: Tuple
    reply: Tuple


def _endpoint(addr: str, port: int) -> str:
    # The wire's own text form (docs/PROTOCOL.md section 9), brackets for IPv6 included.
    return str(Addr(ipaddress.ip_address(addr), port))


def parse_line(line: str) -> ConntrackEntry | None:
    """A TCP entry from one line of /proc/net/nf_conntrack, or None for anything else.

    The line reads ``ipv4 2 tcp 6 119 SYN_SENT src=.. dst=.. sport=.. dport=.. [UNREPLIED]
    src=.. dst=.. sport=.. dport=.. mark=0 zone=0 use=2``: the first src/dst/sport/dport are
    the original direction, the second the reply (after NAT: its dport is the mapped port).
    """
    words = line.split()
    if len(words) < 6 or words[2] != "tcp":
        return None
    found: dict[str, list[str]] = {"src": [], "dst": [], "sport": [], "dport": []}
    for word in words[6:]:
        key, sep, value = word.partition("=")
        if sep and key in found:
            found[key].append(value)
    if any(len(values) < 2 for values in found.values()):
        return None
    try:
        orig, reply = (
            Tuple(found["src"][i], found["dst"][i], int(found["sport"][i]), int(found["dport"][i]))
            for i in (0, 1)
        )
    except ValueError:
        return None
    return ConntrackEntry(words[5], orig, reply)


def parse_table(text: str) -> list[ConntrackEntry]:
    """Every TCP entry of a /proc/net/nf_conntrack dump."""
    return [e for e in (parse_line(line) for line in text.splitlines()) if e is not None]


@dataclass(frozen=True, slots=True)
class PortRemap:
    """A conn of a LAN host whose source port the router's NAT did not keep.

    Attributes:
        router: The router's name (``rtrB``).
        host: The LAN host's address.
        port: Its source port (the peer's shared port).
        peer: Where the conn went (``addr:port``).
        public: The router's public address it was translated to.
        mapped_port: The port it got instead of ``port``.
        state: Conntrack's TCP state of the entry (``SYN_SENT``).
    """

    router: str
    host: str
    port: int
    peer: str
    public: str
    mapped_port: int
    state: str

    def describe(self) -> str:
        """One line: who was remapped to what, and that it is the router's port clash."""
        return (
            f"{self.router} mapped {_endpoint(self.host, self.port)} to "
            f"{_endpoint(self.public, self.mapped_port)} for {self.peer} ({self.state}): "
            "the NAT could not keep the port: a port clash, docs/LAB-NOTES.md section 11"
        )


def find_remaps(
    router: str, entries: Iterable[ConntrackEntry], interest: Iterable[tuple[str, int]]
) -> list[PortRemap]:
    """The entries of ``router`` whose (source address, port) is of interest and whose
    translated source port (the reply's dport) differs from the original one.

    Only meaningful for a port-preserving router: elsewhere every port is "remapped".
    """
    wanted = set(interest)
    out = []
    for e in entries:
        if (e.orig.src, e.orig.sport) not in wanted or e.reply.dport == e.orig.sport:
            continue
        # The reply must come back to this conn's source (it was NATed, not forwarded in).
        if e.reply.src != e.orig.dst or e.reply.sport != e.orig.dport:
            continue
        out.append(
            PortRemap(
                router=router,
                host=e.orig.src,
                port=e.orig.sport,
                peer=_endpoint(e.orig.dst, e.orig.dport),
                public=e.reply.dst,
                mapped_port=e.reply.dport,
                state=e.state,
            )
        )
    return out


def read_table(lab: Lab, router: str) -> list[ConntrackEntry]:
    """``router``'s TCP conntrack entries (none when the table cannot be read)."""
    try:
        proc = lab.run(router, ["cat", CONNTRACK_PROC], check=False)
    except LabError:
        return []
    return parse_table(proc.stdout or "")


def lab_remaps(lab: Lab, hosts: Iterable[str], ports: Iterable[int]) -> list[PortRemap]:
    """Remaps of ``hosts``' conns from ``ports`` in their port-preserving routers.

    Args:
        lab: A built lab.
        hosts: Host names (the run's dialer and accepter).
        ports: Source ports of interest (each peer's ``SelfAddrsGathered.port``).
    """
    wanted_ports = set(ports)
    routers = {r.name: r for r in lab.spec.routers}
    by_router: dict[str, set[tuple[str, int]]] = {}
    for host in lab.spec.hosts:
        router = routers.get(host.router or "")
        if host.name not in hosts or router is None or router.nat != NatKind.PORT_PRESERVING:
            continue
        addr = lab.plan.host_addrs[host.name].v4
        by_router.setdefault(router.name, set()).update((addr, p) for p in wanted_ports)
    out: list[PortRemap] = []
    for router_name, interest in by_router.items():
        out += find_remaps(router_name, read_table(lab, router_name), interest)
    return out
