"""Topologies beyond two homes: several uplinks, NAT64 LANs and VPN tunnels (plan side).

docs/LAB-NOTES.md section 13. :func:`plan_extras` adjusts a plan made by
:func:`rdv_core.lab._builder.plan_lab` (addresses, sysctls, ``ip -batch`` lines and extra
nft tables); the daemons these topologies need (tayga, the socat tunnels) are started by
:mod:`rdv_core.lab._services` once the lab is built. Addressing, on top of the builder's:

- a host's extra uplink *k* (``eth1``, ``eth2``, ...) on router *m* gets ``10.0.m.(100+j)``
  and a default route of metric ``100 * k`` (the first router's route has metric 0);
- a NAT64 router's LAN is IPv6-only (``fd00:m::/64``); tayga translates
  ``2001:db8:64::/96`` to IPv4 from the pool ``192.168.255.0/24``, masqueraded on its wan;
- a VPN tunnel is ``10.8.0.1`` (the concentrator) to ``10.8.0.2`` (the client), TUN over
  UDP port 5000, the concentrator masquerading ``10.8.0.0/24`` on its ``eth0``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rdv_core.lab._spec import INTERNET, HostSpec, NatKind

if TYPE_CHECKING:
    from rdv_core.lab._builder import LabPlan

#: The lab's NAT64 prefix: a network-specific one (RFC 6052 section 2.3), as many carriers
#: use. Not the well-known ``64:ff9b::/96``: RFC 6052 section 3.1 forbids it for non-global
#: IPv4, tayga enforces that (it answers "no route"), and the lab's internet is TEST-NET-3.
NAT64_PREFIX: Final = "2001:db8:64::/96"
#: The IPv4 pool a NAT64 router's tayga maps IPv6 hosts to.
NAT64_POOL: Final = "192.168.255.0/24"
#: tayga's own addresses (it answers ICMP errors from them): IPv4 inside its pool, and
#: an IPv6 one, which tayga requires with the well-known prefix and a private pool.
NAT64_TAYGA4: Final = "192.168.255.1"
NAT64_TAYGA6: Final = "fd64::1"
#: The tunnel subnet and its two ends.
VPN_NET: Final = "10.8.0.0/24"
VPN_SERVER_TUN: Final = "10.8.0.1"
VPN_CLIENT_TUN: Final = "10.8.0.2"
VPN_PORT: Final = 5000
#: The tunnel's MTU: an inner packet plus IP/UDP headers fits the 1500 of the veths.
VPN_MTU: Final = 1400


@dataclass(frozen=True, slots=True)
class Uplink:
    """One more LAN a host is on: its device, router, addresses and route metric."""

    dev: str
    router: str
    v4: str
    v6: str | None
    metric: int


def nat64_address(v4: str) -> str:
    """``v4`` embedded in the lab's NAT64 prefix: ``2001:db8:64::cb00:710a`` (RFC 6052)."""
    net = ipaddress.IPv6Network(NAT64_PREFIX)
    return str(ipaddress.IPv6Address(int(net.network_address) | int(ipaddress.IPv4Address(v4))))


def nat64_embedded(ip: str) -> str | None:
    """The IPv4 address inside a lab NAT64 address, or None for any other address."""
    try:
        v6 = ipaddress.IPv6Address(ip)
    except ValueError:
        return None
    if v6 not in ipaddress.IPv6Network(NAT64_PREFIX):
        return None
    return str(ipaddress.IPv4Address(int(v6) & 0xFFFFFFFF))


def behind_nat64(plan: LabPlan, host: HostSpec) -> bool:
    """True when ``host`` sits on a NAT64 router's IPv6-only LAN."""
    return host.router is not None and plan.spec.router(host.router).nat == NatKind.NAT64


def plan_extras(plan: LabPlan) -> None:
    """Adjust ``plan`` in place for uplinks, NAT64 LANs and VPN concentrators."""
    from rdv_core.lab._builder import NodeAddrs

    spec = plan.spec
    index = {r.name: n for n, r in enumerate(spec.routers, 1)}
    for router in spec.routers:
        if router.nat == NatKind.NAT64:
            n = index[router.name]
            plan.router_lan[router.name] = NodeAddrs(f"10.0.{n}.1", f"fd00:{n}::1")
            sysctls = plan.sysctls[plan.ns(router.name)]
            sysctls["net.ipv6.conf.all.forwarding"] = "1"
    for host in spec.hosts:
        if behind_nat64(plan, host):
            old = plan.host_addrs[host.name]
            n = index[host.router or ""]
            last = old.v4.rsplit(".", 1)[1]
            plan.host_addrs[host.name] = NodeAddrs("", f"fd00:{n}::{last}")
        if host.runs_vpn:
            plan.sysctls[plan.ns(host.name)]["net.ipv4.ip_forward"] = "1"
        if host.uplinks:
            # Answer ARP only for the receiving interface's own addresses: otherwise a box on
            # the lab's internet (whose default route is on-link) reaches our wifi address
            # through the LTE interface, which no real internet would do.
            plan.sysctls[plan.ns(host.name)]["net.ipv4.conf.all.arp_ignore"] = "1"
        for k, router_name in enumerate(host.uplinks, 1):
            if router_name == INTERNET:
                j = sum(1 for h in spec.hosts if INTERNET in h.uplinks and h.name < host.name)
                v6 = f"2001:db8::{30 + j}" if spec.ipv6 else None
                up = Uplink(f"eth{k}", INTERNET, f"203.0.113.{30 + j}", v6, 100 * k)
                plan.uplinks.setdefault(host.name, []).append(up)
                continue
            m = index[router_name]
            j = sum(1 for h in spec.hosts if router_name in h.uplinks and h.name < host.name)
            plan.uplinks.setdefault(host.name, []).append(
                Uplink(
                    f"eth{k}",
                    router_name,
                    f"10.0.{m}.{100 + j}",
                    f"fd00:{m}::{100 + j}" if spec.ipv6 else None,
                    100 * k,
                )
            )


def extra_batch_lines(plan: LabPlan, out: dict[str, list[str]]) -> None:
    """Add (or, for NAT64 hosts, replace) the ``ip -batch`` lines of each namespace."""
    spec = plan.spec
    for host in spec.hosts:
        ns = plan.ns(host.name)
        for up in plan.uplinks.get(host.name, []):
            if up.router == INTERNET:
                out[plan.ns("inet")] += [
                    f"link add name u-{host.name} type veth peer name {up.dev} netns {ns}",
                    f"link set u-{host.name} master br0",
                    f"link set u-{host.name} up",
                ]
                # A /32 and an on-link default: like an LTE modem's point-to-point link, it
                # gives no route to the lab's internet other than that default route.
                out[ns] += [f"address add {up.v4}/32 dev {up.dev}", f"link set {up.dev} up"]
                out[ns] += [f"route add default dev {up.dev} metric {up.metric}"]
                # Source routing, as multi-homed hosts set it up: what leaves from this
                # address (the answers to conns the peer made to it) leaves by this link.
                table = 100 + up.metric // 100
                out[ns] += [
                    f"rule add from {up.v4} table {table}",
                    f"route add default dev {up.dev} table {table}",
                ]
                if up.v6:
                    out[ns] += [
                        f"address add {up.v6}/64 dev {up.dev} nodad",
                        f"route add ::/0 dev {up.dev} metric {up.metric}",
                    ]
                continue
            out[plan.ns(up.router)] += [
                f"link add name h-{host.name} type veth peer name {up.dev} netns {ns}",
                f"link set h-{host.name} master lan",
                f"link set h-{host.name} up",
            ]
            gw = plan.router_lan[up.router]
            out[ns] += [f"address add {up.v4}/24 dev {up.dev}", f"link set {up.dev} up"]
            out[ns] += [f"route add default via {gw.v4} dev {up.dev} metric {up.metric}"]
            # Source routing, as for a public uplink above: answers from this address leave by
            # this uplink's router, not by the default route's.
            table = 100 + up.metric // 100
            out[ns] += [
                f"rule add from {up.v4} table {table}",
                f"route add default via {gw.v4} dev {up.dev} table {table}",
            ]
            if up.v6 and gw.v6:
                out[ns] += [
                    f"address add {up.v6}/64 dev {up.dev} nodad",
                    f"route add ::/0 via {gw.v6} dev {up.dev} metric {up.metric}",
                ]
        if behind_nat64(plan, host):
            gw6 = plan.router_lan[host.router or ""].v6
            out[ns] = [
                "link set lo up",
                f"address add {plan.host_addrs[host.name].v6}/64 dev eth0 nodad",
                "link set eth0 up",
                f"route add ::/0 via {gw6}",
            ]


def extra_nft(plan: LabPlan) -> dict[str, str]:
    """Extra nft tables: a NAT64 router's pool masquerade, a VPN concentrator's NAT + firewall."""
    found: dict[str, str] = {}
    for router in plan.spec.routers:
        if router.nat == NatKind.NAT64:
            found[plan.ns(router.name)] = "\n".join(
                [
                    "table ip rdvnat64 {",
                    "\tchain nat_out {",
                    "\t\ttype nat hook postrouting priority srcnat; policy accept;",
                    f'\t\toifname "wan" ip saddr {NAT64_POOL} masquerade',
                    "\t}",
                    "}",
                    "",
                ]
            )
    for host in plan.spec.hosts:
        if host.runs_vpn:
            found[plan.ns(host.name)] = "\n".join(
                [
                    "table inet rdvvpn {",
                    "\tchain nat_out {",
                    "\t\ttype nat hook postrouting priority srcnat; policy accept;",
                    f'\t\toifname "eth0" ip saddr {VPN_NET} masquerade',
                    "\t}",
                    # Like a home router's firewall: what the tunnel started comes back,
                    # nothing else gets in (the tunnel's own UDP is not TCP).
                    "\tchain to_tunnel {",
                    "\t\ttype filter hook forward priority filter; policy accept;",
                    '\t\tiifname "eth0" ct state established,related accept',
                    '\t\tiifname "eth0" drop',
                    "\t}",
                    "\tchain to_me {",
                    "\t\ttype filter hook input priority filter; policy accept;",
                    '\t\tiifname "eth0" ct state established,related accept',
                    '\t\tiifname "eth0" meta l4proto tcp drop',
                    "\t}",
                    "}",
                    "",
                ]
            )
    return found
