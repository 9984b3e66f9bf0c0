"""Turn a :class:`LabSpec` into a plan (pure text) and apply it (few, batched commands).

Topology (one namespace per box; nothing in the root namespace; no link to it either)::

    cliA 10.0.1.2 ─ rtrA [lan 10.0.1.1 | wan 203.0.113.11] ─┐
                                                            ├─ inet: bridge br0 (no address)
    cliB 10.0.2.2 ─ rtrB [lan 10.0.2.1 | wan 203.0.113.12] ─┤
                               srv 203.0.113.10 (rdv server) ┘

Every veth pair is created from the namespace nearer the internet with its peer end placed
straight into the child namespace, so one ``ip -n NS -batch -`` per namespace, run in
order inet, srv, routers, hosts, configures everything. Default routes point *into* the lab
(a client needs one so that the OS can pick its own candidate addresses); since the lab has
no link to the root namespace, nothing can leave it.

Each router gets one atomic ``nft -f`` ruleset (NAT + firewall), and, when impaired without
netem, one ``iptables-restore`` per family that queues its TCP to the NFQUEUE delayer
(nft's native ``queue`` is not built into this kernel; iptables' NFQUEUE target is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from rdv_core.lab._environments import egress_ruleset, host_ruleset
from rdv_core.lab._netns import lab_ns_name
from rdv_core.lab._spec import Firewall, LabSpec, NatKind, RouterSpec
from rdv_core.lab._topologies import (
    Uplink,
    behind_nat64,
    extra_batch_lines,
    extra_nft,
    nat64_address,
    nat64_embedded,
    plan_extras,
)
from rdv_core.wire import Addr, AddrError

INET4_PREFIX: Final = "203.0.113"
INET6_PREFIX: Final = "2001:db8::"
SERVER4: Final = f"{INET4_PREFIX}.10"
SERVER6: Final = f"{INET6_PREFIX}10"
#: The rdv server's port inside the lab.
SERVER_PORT: Final = 7000
#: A sequential NAT's public ports: BASE, BASE+1, ... (wrapping after SPAN conns).
SEQUENTIAL_BASE: Final = 20000
SEQUENTIAL_SPAN: Final = 20000
#: NFQUEUE number used in every impaired router (queues are per network namespace).
QUEUE_NUM: Final = 0

_ALL_NS_SYSCTLS: Final = {
    # Without this, fresh IPv6 addresses sit in "tentative" state and first connects stall.
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
}


@dataclass(frozen=True, slots=True)
class NodeAddrs:
    """Addresses of a host, router LAN side or router wan side."""

    v4: str
    v6: str | None = None

    def for_family(self, family: int) -> str | None:
        """The address of IP version ``family`` (4 or 6)."""
        return self.v4 if family == 4 else self.v6


@dataclass(slots=True)
class LabPlan:
    """Everything needed to build one lab, as data.

    Attributes:
        spec: What was asked for.
        number: The lab number within the owner process.
        owner_pid: The process owning the namespaces (part of their names).
        namespaces: role -> namespace name, in build order.
        host_addrs: host -> its addresses.
        router_wan: router -> its wan addresses.
        router_lan: router -> its LAN gateway addresses.
        batches: namespace -> ``ip -batch`` script, applied in ``namespaces`` order.
        sysctls: namespace -> sysctl values, written before any interface exists.
        nft: router namespace -> nft ruleset.
        uplinks: host -> its extra uplinks (:mod:`rdv_core.lab._topologies`).
    """

    spec: LabSpec
    number: int
    owner_pid: int
    namespaces: dict[str, str] = field(default_factory=dict)
    host_addrs: dict[str, NodeAddrs] = field(default_factory=dict)
    router_wan: dict[str, NodeAddrs] = field(default_factory=dict)
    router_lan: dict[str, NodeAddrs] = field(default_factory=dict)
    batches: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, dict[str, str]] = field(default_factory=dict)
    nft: dict[str, str] = field(default_factory=dict)
    uplinks: dict[str, list[Uplink]] = field(default_factory=dict)

    @property
    def server_addr(self) -> str:
        """``ip:port`` of the rdv server."""
        return f"{SERVER4}:{SERVER_PORT}"

    @property
    def server_url(self) -> str:
        """The URL clients use."""
        return f"http://{self.server_addr}"

    def server_url_for(self, role: str) -> str:
        """The URL host ``role`` uses: through NAT64 (as DNS64 would give it) when IPv6-only."""
        if behind_nat64(self, self.spec.host(role)):
            return f"http://[{nat64_address(SERVER4)}]:{SERVER_PORT}"
        return self.server_url

    def ns(self, role: str) -> str:
        """The namespace of ``role`` (``inet``, ``srv``, a router or a host name)."""
        return self.namespaces[role]

    def describe_addr(self, addr: str) -> str:
        """Which box of the lab owns ``ip`` or ``ip:port`` (``rtrB wan``), or ``?``."""
        try:
            ip = str(Addr.parse(addr).unmapped().ip)
        except AddrError:
            ip = addr
        embedded = nat64_embedded(ip)
        if embedded is not None:
            return f"{self.describe_addr(embedded)} via NAT64"
        for name, a in self.host_addrs.items():
            if ip in (a.v4, a.v6):
                return name
        for name, ups in self.uplinks.items():
            for up in ups:
                if ip in (up.v4, up.v6):
                    return f"{name} {up.dev}"
        for name, a in self.router_wan.items():
            if ip in (a.v4, a.v6):
                return f"{name} wan"
        if ip in (SERVER4, SERVER6):
            return "srv"
        return "?"


def _router_index(spec: LabSpec, name: str) -> int:
    return [r.name for r in spec.routers].index(name) + 1


def plan_lab(spec: LabSpec, *, owner_pid: int, number: int) -> LabPlan:
    """Plan lab ``number`` of process ``owner_pid`` for ``spec`` (no side effects)."""
    plan = LabPlan(spec=spec, number=number, owner_pid=owner_pid)
    roles = ["inet", "srv", *(r.name for r in spec.routers), *(h.name for h in spec.hosts)]
    plan.namespaces = {role: lab_ns_name(owner_pid, number, role) for role in roles}
    v6 = spec.ipv6

    for n, router in enumerate(spec.routers, 1):
        plan.router_wan[router.name] = NodeAddrs(
            f"{INET4_PREFIX}.{10 + n}", f"{INET6_PREFIX}{10 + n}" if v6 else None
        )
        plan.router_lan[router.name] = NodeAddrs(f"10.0.{n}.1", f"fd00:{n}::1" if v6 else None)
    on_router: dict[str, int] = {}
    on_inet = 0
    for host in spec.hosts:
        if host.router is None:
            plan.host_addrs[host.name] = NodeAddrs(
                f"{INET4_PREFIX}.{20 + on_inet}", f"{INET6_PREFIX}{20 + on_inet}" if v6 else None
            )
            on_inet += 1
        else:
            n = _router_index(spec, host.router)
            j = on_router.get(host.router, 0)
            on_router[host.router] = j + 1
            plan.host_addrs[host.name] = NodeAddrs(
                f"10.0.{n}.{2 + j}", f"fd00:{n}::{2 + j}" if v6 else None
            )

    for role, ns in plan.namespaces.items():
        values = dict(_ALL_NS_SYSCTLS)
        if role in {r.name for r in spec.routers}:
            values["net.ipv4.ip_forward"] = "1"
            if v6:
                values["net.ipv6.conf.all.forwarding"] = "1"
        plan.sysctls[ns] = values

    plan_extras(plan)
    plan.batches = _batches(plan)
    for router in spec.routers:
        egress = egress_ruleset(router, _allowed_out(plan, router))
        plan.nft[plan.ns(router.name)] = nft_ruleset(router, plan) + egress
    for host in spec.hosts:
        ruleset = host_ruleset(host)
        if ruleset:
            plan.nft[plan.ns(host.name)] = ruleset
    for ns, ruleset in extra_nft(plan).items():
        plan.nft[ns] = plan.nft.get(ns, "") + ruleset
    return plan


def _allowed_out(plan: LabPlan, router: RouterSpec) -> list[str]:
    """The addresses of the boxes named in ``router.allow_out``."""
    found: list[str] = []
    for name in router.allow_out or ():
        addrs = NodeAddrs(SERVER4, SERVER6 if plan.spec.ipv6 else None)
        if name != "srv":
            addrs = plan.host_addrs[name]
        found += [a for a in (addrs.v4, addrs.v6) if a]
    return found


def _addr_lines(dev: str, addrs: NodeAddrs, prefix4: int, prefix6: int) -> list[str]:
    lines = [f"address add {addrs.v4}/{prefix4} dev {dev}"]
    if addrs.v6:
        lines.append(f"address add {addrs.v6}/{prefix6} dev {dev} nodad")
    return lines


def _lan_prefix6_routes(plan: LabPlan, exclude: str | None) -> list[str]:
    """IPv6 routes from the internet side to every router's ULA LAN, via its wan."""
    lines = []
    for n, router in enumerate(plan.spec.routers, 1):
        if router.name != exclude:
            lines.append(f"route add fd00:{n}::/64 via {plan.router_wan[router.name].v6}")
    return lines


def _batches(plan: LabPlan) -> dict[str, str]:
    spec = plan.spec
    v6 = spec.ipv6
    out: dict[str, list[str]] = {ns: ["link set lo up"] for ns in plan.namespaces.values()}

    inet = out[plan.ns("inet")]
    inet += ["link add name br0 type bridge mcast_snooping 0", "link set br0 up"]
    attached = ["srv", *(r.name for r in spec.routers)]
    attached += [h.name for h in spec.hosts if h.router is None]
    for role in attached:
        peer = "wan" if role in plan.router_wan else "eth0"
        inet += [
            f"link add name p-{role} type veth peer name {peer} netns {plan.ns(role)}",
            f"link set p-{role} master br0",
            f"link set p-{role} up",
        ]

    srv = out[plan.ns("srv")]
    srv += _addr_lines("eth0", NodeAddrs(SERVER4, SERVER6 if v6 else None), 24, 64)
    srv += ["link set eth0 up", "route add default dev eth0"]
    if v6:
        srv += ["route add ::/0 dev eth0", *_lan_prefix6_routes(plan, None)]

    for router in spec.routers:
        lines = out[plan.ns(router.name)]
        lines += _addr_lines("wan", plan.router_wan[router.name], 24, 64)
        lines += ["link set wan up", "link add name lan type bridge mcast_snooping 0"]
        lines += _addr_lines("lan", plan.router_lan[router.name], 24, 64)
        lines += ["link set lan up"]
        for host in spec.hosts:
            if host.router == router.name:
                lines += [
                    f"link add name h-{host.name} type veth peer name eth0 "
                    f"netns {plan.ns(host.name)}",
                    f"link set h-{host.name} master lan",
                    f"link set h-{host.name} up",
                ]
        if v6:
            lines += _lan_prefix6_routes(plan, router.name)

    for host in spec.hosts:
        lines = out[plan.ns(host.name)]
        lines += _addr_lines("eth0", plan.host_addrs[host.name], 24, 64)
        lines += ["link set eth0 up"]
        if host.router is None:
            lines += ["route add default dev eth0"]
            if v6:
                lines += ["route add ::/0 dev eth0", *_lan_prefix6_routes(plan, None)]
        else:
            gw = plan.router_lan[host.router]
            lines += [f"route add default via {gw.v4}"]
            if gw.v6:
                lines += [f"route add ::/0 via {gw.v6}"]
    extra_batch_lines(plan, out)
    return {ns: "\n".join(lines) + "\n" for ns, lines in out.items()}


def nft_ruleset(router: RouterSpec, plan: LabPlan) -> str:
    """The one atomic nft ruleset of ``router``: IPv4 NAT on wan plus the wan firewall.

    The firewall chains live in a ``table inet``, so the same rules guard both families.

    nft 1.0.6 wants one statement per line; ``fwd`` is a reserved word, hence the names.
    """
    n = _router_index(plan.spec, router.name)
    lines = ["table inet rdvlab {"]
    if router.nat != NatKind.NONE:
        flags = " random,fully-random" if router.nat == NatKind.RANDOM_PORT else ""
        lines += [
            "\tchain nat_out {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        ]
        if router.nat == NatKind.SEQUENTIAL:
            # The nat chain sees each conn's first packet once: numgen counts conns.
            wan = plan.router_wan[router.name].v4
            lines.append(
                f'\t\toifname "wan" ip saddr 10.0.{n}.0/24 meta l4proto tcp '
                f"snat to {wan}:numgen inc mod {SEQUENTIAL_SPAN} offset {SEQUENTIAL_BASE}"
            )
        lines += [
            f'\t\toifname "wan" ip saddr 10.0.{n}.0/24 masquerade{flags}',
            "\t}",
        ]
    if router.firewall != Firewall.NONE:
        # Unsolicited packets to the router's own wan address (an early SYN to a port with
        # no NAT mapping yet) go through *input*; to the LAN (IPv6, or mapped IPv4) through
        # *forward*. Both need the same treatment.
        for chain, hook in (("wan_to_lan", "forward"), ("wan_to_router", "input")):
            lines += [
                f"\tchain {chain} {{",
                f"\t\ttype filter hook {hook} priority filter; policy accept;",
                '\t\tiifname "wan" ct state established,related accept',
                # Neighbour discovery must pass, or IPv6 dies with EHOSTUNREACH.
                '\t\tiifname "wan" meta l4proto ipv6-icmp accept',
            ]
            if router.firewall == Firewall.REJECT:
                lines.append('\t\tiifname "wan" meta l4proto tcp reject with tcp reset')
            elif router.firewall == Firewall.REJECT_ICMP:
                lines.append(
                    '\t\tiifname "wan" meta l4proto tcp reject with icmpx type port-unreachable'
                )
            lines += ['\t\tiifname "wan" drop', "\t}"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def queue_rules(families: frozenset[int], *, host: bool = False) -> dict[str, str]:
    """``iptables-restore`` input per command, queueing every TCP packet once.

    In a router, every packet it receives (routed or for itself: ``PREROUTING``); in a
    host (``host=True``, its link impairment), also every packet it sends (``OUTPUT``).
    """
    chains = ["PREROUTING", "OUTPUT"] if host else ["PREROUTING"]
    script = (
        "*raw\n"
        + "".join(f":{chain} ACCEPT [0:0]\n" for chain in chains)
        + "".join(
            f"-A {chain} -p tcp -j NFQUEUE --queue-num {QUEUE_NUM} --queue-bypass\n"
            for chain in chains
        )
        + "COMMIT\n"
    )
    out = {}
    if 4 in families:
        out["iptables-restore"] = script
    if 6 in families:
        out["ip6tables-restore"] = script
    return out
