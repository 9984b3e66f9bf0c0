"""Declarative lab specifications: who sits behind which router, and how each router behaves.

A :class:`LabSpec` says *what* to build; :mod:`rdv_core.lab._builder` turns it into namespaces,
veth pairs, routes and one nft ruleset per router. The addressing plan is fixed so that every
lab reads the same way (see :mod:`rdv_core.lab._builder`):

- the simulated internet is ``203.0.113.0/24`` (TEST-NET-3, classified ``public4``), plus
  ``2001:db8::/64`` when IPv6 is on; the rdv server is ``203.0.113.10``;
- router *n* (1-based, in spec order) has wan ``203.0.113.(10+n)`` and LAN ``10.0.n.0/24``
  (IPv6 ULA ``fd00:n::/64``), hosts on it get ``.2``, ``.3``, ...;
- hosts on the internet itself get ``203.0.113.20``, ``.21``, ...
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Final, Literal

from rdv_core.errors import RdvError

Outcome = Literal["direct", "relay", "failed"]
"""What a run ended with: a p2p conn, the server relay, or nothing."""


#: In :attr:`HostSpec.uplinks`: an interface on the simulated internet, not behind a router.
INTERNET: Final = "inet"


class LabSpecError(RdvError, ValueError):
    """A lab specification is inconsistent (unknown router, duplicate name, ...)."""


class NatKind(enum.StrEnum):
    """How a router translates its LAN's IPv4 source addresses."""

    #: Masquerade keeping the source port when free: the port the server observes is the
    #: port every other destination sees too ("cone-like", endpoint-independent mapping).
    PORT_PRESERVING = "port-preserving"
    #: ``masquerade random,fully-random``: a fresh random port per connection, so the port
    #: the server observes is useless to the peer ("symmetric-like").
    RANDOM_PORT = "random-port"
    #: Every new TCP conn takes the next public port (``snat to WAN:numgen inc``): symmetric,
    #: but predictable (docs/LAB-NOTES.md section 12).
    SEQUENTIAL = "sequential-port"
    #: No translation (IPv6 is never translated; IPv4 then needs routable LAN addresses).
    NONE = "none"
    #: An IPv6-only LAN behind NAT64 (tayga, prefix ``2001:db8:64::/96``) and a
    #: port-preserving masquerade of the translated IPv4 (docs/LAB-NOTES.md section 13).
    NAT64 = "nat64"


class Firewall(enum.StrEnum):
    """What a router does with unsolicited packets arriving from the internet side."""

    #: Drop them silently (most home routers): an early SYN simply vanishes.
    DROP = "drop"
    #: Answer unsolicited TCP with a reset (``reject with tcp reset``, OpenWrt-style).
    REJECT = "reject"
    #: No rule at all: the router's own stack answers an unmapped SYN with RST.
    NONE = "none"
    #: Answer unsolicited TCP with ICMP port unreachable (``reject with icmpx type
    #: port-unreachable``, iptables' default ``REJECT``). Unlike an RST, the ICMP error
    #: leaves the sender's NAT mapping open.
    REJECT_ICMP = "reject-icmp"


@dataclass(frozen=True, slots=True)
class Impairment:
    """Per-router link impairment, applied once to every TCP packet crossing the router.

    Attributes:
        delay_ms: Added one-way delay per crossing.
        jitter_ms: Uniform random extra delay in ``[0, jitter_ms]`` per packet.
        loss: Probability (0..1) that a packet is dropped.
        families: IP versions affected (4, 6 or both).
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    families: frozenset[int] = frozenset({4, 6})

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise LabSpecError("delay and jitter must not be negative")
        if not 0.0 <= self.loss <= 1.0:
            raise LabSpecError(f"loss must be within 0..1, not {self.loss}")
        if not self.families or not self.families <= {4, 6}:
            raise LabSpecError(f"families must be a non-empty subset of {{4, 6}}: {self.families}")

    @property
    def active(self) -> bool:
        """True when packets are delayed or dropped at all."""
        return self.delay_ms > 0 or self.jitter_ms > 0 or self.loss > 0

    def describe(self) -> str:
        """``25 ms`` / ``20% loss`` / ``25 ms IPv4 only``, or ``none``."""
        parts = []
        if self.delay_ms:
            parts.append(f"{self.delay_ms:g} ms")
        if self.jitter_ms:
            parts.append(f"±{self.jitter_ms:g} ms jitter")
        if self.loss:
            parts.append(f"{self.loss * 100:g}% loss")
        if not parts:
            return "none"
        if self.families != frozenset({4, 6}):
            parts.append(f"IPv{min(self.families)} only")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class RouterSpec:
    """A home router: LAN behind it, wan on the simulated internet.

    Attributes:
        name: Short name (also the namespace role), e.g. ``rtrA``.
        nat: IPv4 translation kind.
        firewall: Treatment of unsolicited inbound packets (both families).
        impairment: Delay / jitter / loss per crossing.
        allow_out: When set, the only boxes its LAN may reach through it (names of hosts
            on the internet, or ``srv``); everything else from the LAN is dropped, as in an
            office network whose only way out is its proxy (docs/LAB-NOTES.md section 13).
    """

    name: str
    nat: NatKind = NatKind.PORT_PRESERVING
    firewall: Firewall = Firewall.DROP
    impairment: Impairment = field(default_factory=Impairment)
    allow_out: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A machine: on a router's LAN, or directly on the simulated internet (``router=None``).

    Attributes:
        name: Short name (also the namespace role), e.g. ``cliA``.
        router: The router whose LAN it is on (its default route), or None for the
            internet itself.
        link: Delay / jitter / loss on the host's own link, each way (applied in the
            host's namespace to every TCP packet it sends or receives): the host sits
            that far from its router, while the router answers strangers at once.
        firewall: The host's own firewall for inbound TCP (a laptop firewall):
            ``NONE`` accepts, ``DROP`` drops and ``REJECT`` resets every SYN that does not
            belong to a connection the host started (stateful, like the routers').
        proxy: Name of a host running an HTTP proxy (``runs_proxy``) that this host's rdv
            reaches the server through (``--proxy``).
        runs_proxy: Run a real HTTP ``CONNECT`` proxy (tinyproxy) on port 3128 here.
        uplinks: More routers whose LANs this host is also on (``eth1``, ...), each with a
            default route of a higher metric than ``router``'s (a laptop on wifi and LTE);
            :data:`INTERNET` puts that interface on the internet itself, with a public
            address (an LTE uplink without NAT).
        vpn: Name of a host running a VPN concentrator (``runs_vpn``): this host's default
            route goes through a user-space tunnel (a TUN device over UDP) to it.
        runs_vpn: Be a VPN concentrator: the far end of the tunnels, NATing them out.
        rdv_args: Extra options for this host's rdv (``--interface eth0``).
    """

    name: str
    router: str | None = None
    link: Impairment = field(default_factory=Impairment)
    firewall: Firewall = Firewall.NONE
    proxy: str | None = None
    runs_proxy: bool = False
    uplinks: tuple[str, ...] = ()
    vpn: str | None = None
    runs_vpn: bool = False
    rdv_args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabSpec:
    """A whole lab: routers, hosts, the two rdv peers and what should happen.

    Attributes:
        name: Preset name (``cone-fw``).
        summary: One line for ``rdv lab list``.
        routers: The routers, numbered 1.. in this order for addressing.
        hosts: The hosts (at least the dialer and the accepter).
        dialer: Host running ``rdv dial``.
        accepter: Host running ``rdv accept``.
        ipv6: Also give LANs ULA prefixes and route IPv6 between routers (never NATed).
        spaces: The ``--spaces`` value both clients use.
        expect: The physically right outcome.
        why: One sentence saying why that outcome is right.
        expect_family: For direct outcomes, the IP version the chosen path must use (or None).
    """

    name: str
    summary: str
    routers: tuple[RouterSpec, ...]
    hosts: tuple[HostSpec, ...]
    expect: Outcome
    why: str
    dialer: str = "cliA"
    accepter: str = "cliB"
    ipv6: bool = False
    spaces: str = "default"
    expect_family: int | None = None

    def __post_init__(self) -> None:
        names = [r.name for r in self.routers] + [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise LabSpecError(f"{self.name}: duplicate router/host names in {names}")
        reserved = {"inet", "srv"}
        if reserved & set(names):
            raise LabSpecError(f"{self.name}: names {sorted(reserved)} are reserved")
        for n in names:
            if not n.isascii() or not n.isalnum() or len(n) > 8:
                raise LabSpecError(f"{self.name}: name {n!r} must be 1-8 ASCII letters/digits")
        routers = {r.name for r in self.routers}
        for h in self.hosts:
            if h.router is not None and h.router not in routers:
                raise LabSpecError(f"{self.name}: host {h.name} is behind unknown {h.router}")
        hosts = {h.name for h in self.hosts}
        _check_environment(self, hosts)
        for role in (self.dialer, self.accepter):
            if role not in hosts:
                raise LabSpecError(f"{self.name}: peer {role} is not a host of the lab")
        if self.dialer == self.accepter:
            raise LabSpecError(f"{self.name}: dialer and accepter must be different hosts")
        if len(self.routers) > 9:
            raise LabSpecError(f"{self.name}: at most 9 routers")

    def router(self, name: str) -> RouterSpec:
        """The router called ``name``."""
        for r in self.routers:
            if r.name == name:
                return r
        raise LabSpecError(f"{self.name}: no router {name!r}")

    def host(self, name: str) -> HostSpec:
        """The host called ``name``."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabSpecError(f"{self.name}: no host {name!r}")

    def with_delay(self, delay_ms: float) -> LabSpec:
        """The same lab with every router's one-way delay set to ``delay_ms``.

        Loss, jitter and the affected families of each router are kept. The expectation
        stays: a delay slows the race down but changes no physics.
        """
        routers = tuple(
            dataclasses.replace(
                r, impairment=dataclasses.replace(r.impairment, delay_ms=float(delay_ms))
            )
            for r in self.routers
        )
        return dataclasses.replace(self, routers=routers)


def _check_environment(spec: LabSpec, hosts: set[str]) -> None:
    """The cross-references of proxies and egress allow lists name real boxes."""
    proxies = {h.name for h in spec.hosts if h.runs_proxy}
    vpns = {h.name for h in spec.hosts if h.runs_vpn}
    nat64 = {r.name for r in spec.routers if r.nat == NatKind.NAT64}
    routers = {r.name for r in spec.routers}
    for h in spec.hosts:
        if (h.runs_proxy or h.runs_vpn) and h.router is not None:
            raise LabSpecError(f"{spec.name}: service host {h.name} must be on the internet")
        if h.proxy is not None and h.proxy not in proxies:
            raise LabSpecError(f"{spec.name}: {h.name} uses {h.proxy!r}, which runs no proxy")
        if h.vpn is not None and (h.vpn not in vpns or h.router is None):
            raise LabSpecError(f"{spec.name}: {h.name} needs a LAN and a VPN host, not {h.vpn!r}")
        for u in h.uplinks:
            if u == INTERNET:
                continue
            if u not in routers or u == h.router or h.router is None:
                raise LabSpecError(f"{spec.name}: {h.name} has a bad uplink {u!r}")
            if u in nat64 or h.router in nat64:
                raise LabSpecError(f"{spec.name}: {h.name}: no extra uplinks behind NAT64")
        if h.router in nat64 and (h.vpn is not None or h.proxy is not None):
            raise LabSpecError(f"{spec.name}: {h.name}: NAT64 hosts use neither VPN nor proxy")
    for r in spec.routers:
        for name in r.allow_out or ():
            if name != "srv" and name not in hosts:
                raise LabSpecError(f"{spec.name}: {r.name} allows out to unknown {name!r}")
