"""The named labs: one vocabulary shared by docs, tests and users.

Each preset states the outcome a user should expect and why, in one sentence: ``rdv lab list``
prints exactly that, and the natlab tests assert exactly that.
"""

from __future__ import annotations

from typing import Final

from rdv_core.lab._spec import (
    INTERNET,
    Firewall,
    HostSpec,
    Impairment,
    LabSpec,
    LabSpecError,
    NatKind,
    Outcome,
    RouterSpec,
)

_PP = NatKind.PORT_PRESERVING
_TWO_HOMES = (HostSpec("cliA", "rtrA"), HostSpec("cliB", "rtrB"))


def _pair(
    name: str,
    summary: str,
    a: RouterSpec,
    b: RouterSpec,
    *,
    expect: Outcome,
    why: str,
    ipv6: bool = False,
    spaces: str = "default",
    expect_family: int | None = None,
) -> LabSpec:
    return LabSpec(
        name=name,
        summary=summary,
        routers=(a, b),
        hosts=_TWO_HOMES,
        expect=expect,
        why=why,
        ipv6=ipv6,
        spaces=spaces,
        expect_family=expect_family,
    )


def _both(
    nat: NatKind, firewall: Firewall, impairment: Impairment | None = None
) -> tuple[RouterSpec, RouterSpec]:
    imp = impairment or Impairment()
    return (RouterSpec("rtrA", nat, firewall, imp), RouterSpec("rtrB", nat, firewall, imp))


_PRESET_LIST: Final[tuple[LabSpec, ...]] = (
    _pair(
        "cone-fw",
        "port-preserving NAT + drop firewall, both sides",
        *_both(_PP, Firewall.DROP),
        expect="direct",
        why="the NATs keep the port the server saw and the firewalls silently drop the early "
        "SYN, so the two SYNs meet in a TCP simultaneous open",
    ),
    _pair(
        "cone-rst",
        "port-preserving NAT, routers answer unsolicited SYNs with RST (no drop rule)",
        *_both(_PP, Firewall.NONE),
        expect="direct",
        why="a SYN reaching the far router before that router has seen its own side's SYN "
        "is reset, and the reset erases the near mapping; the accepter then re-opens its "
        "mapping with a SYN that the dialer's router drops without a reset, and the dialer's "
        "next SYN passes it",
    ),
    _pair(
        "cone-reject",
        "port-preserving NAT with a reject-with-tcp-reset rule, both sides",
        *_both(_PP, Firewall.REJECT),
        expect="direct",
        why="like cone-rst, with the reset sent by an explicit firewall rule",
    ),
    LabSpec(
        name="rst-far",
        summary="A 20 ms behind a port-preserving NAT that resets early SYNs, B behind a "
        "port-preserving NAT + drop firewall",
        routers=(RouterSpec("rtrA", _PP, Firewall.NONE), RouterSpec("rtrB", _PP, Firewall.DROP)),
        hosts=(HostSpec("cliA", "rtrA", Impairment(delay_ms=20.0)), HostSpec("cliB", "rtrB")),
        expect="direct",
        why="B's SYNs are reset by A's router 0.1 ms away until A's SYN, 20 ms later, "
        "opens it (B's router drops A's SYN and keeps that mapping): B must keep a SYN "
        "coming, and must not give up one that A answers 40 ms later",
    ),
    _pair(
        "symmetric-a",
        "random ports on A's router only, B port-preserving + drop firewall",
        RouterSpec("rtrA", NatKind.RANDOM_PORT, Firewall.DROP),
        RouterSpec("rtrB", _PP, Firewall.DROP),
        expect="relay",
        why="A's router gives each destination a fresh random port, so B's SYN to the port "
        "the server observed hits nothing, and B's firewall drops A's SYN from that new port",
    ),
    _pair(
        "symmetric-both",
        "random ports on both routers",
        *_both(NatKind.RANDOM_PORT, Firewall.DROP),
        expect="relay",
        why="neither observed port is the one the peer will see: no direct path can open",
    ),
    LabSpec(
        name="public-b",
        summary="B on the simulated internet (no NAT), A behind port-preserving NAT + firewall",
        routers=(RouterSpec("rtrA", _PP, Firewall.DROP),),
        hosts=(HostSpec("cliA", "rtrA"), HostSpec("cliB", None)),
        expect="direct",
        why="A simply dials B's public address; nothing stands in the way",
    ),
    LabSpec(
        name="same-lan",
        summary="both peers behind one router, private candidates enabled",
        routers=(RouterSpec("rtrA", _PP, Firewall.DROP),),
        hosts=(HostSpec("cliA", "rtrA"), HostSpec("cliB", "rtrA")),
        expect="direct",
        why="the private 10.0.1.x candidates reach each other on the LAN",
    ),
    LabSpec(
        name="same-lan-public",
        summary="both peers behind one router, only public candidates (--spaces public4)",
        routers=(RouterSpec("rtrA", _PP, Firewall.DROP),),
        hosts=(HostSpec("cliA", "rtrA"), HostSpec("cliB", "rtrA")),
        spaces="public4",
        expect="relay",
        why="the only candidates are the router's public address, and Linux NAT does no "
        "hairpinning",
    ),
    _pair(
        "ipv6",
        "IPv6 ULA LANs behind stateful firewalls, no NAT (--spaces private6)",
        *_both(_PP, Firewall.DROP),
        ipv6=True,
        spaces="private6",
        expect_family=6,
        expect="direct",
        why="IPv6 needs no translation: the stateful firewalls let the simultaneous open "
        "through, just as for cone-fw",
    ),
    _pair(
        "dualstack-v4slow",
        "dual-stack, IPv4 delayed 25 ms per router, IPv6 not",
        *_both(_PP, Firewall.DROP, Impairment(delay_ms=25.0, families=frozenset({4}))),
        ipv6=True,
        expect_family=6,
        expect="direct",
        why="both families work, and the IPv6 candidate answers ~100 ms sooner",
    ),
    _pair(
        "delay25",
        "cone-fw with 25 ms one-way delay per router",
        *_both(_PP, Firewall.DROP, Impairment(delay_ms=25.0)),
        expect="direct",
        why="the physics of cone-fw, one peer round trip (~100 ms) slower",
    ),
    _pair(
        "loss20",
        "cone-fw with 20% packet loss per router",
        *_both(_PP, Firewall.DROP, Impairment(loss=0.2)),
        expect="direct",
        why="usually direct; a lost SYN costs a 1 s retransmission, so some runs end on the "
        "relay when the 1 s p2p wait runs out first",
    ),
    # The networks beyond NAT (docs/LAB-NOTES.md section 13).
    LabSpec(
        name="host-fw-drop",
        summary="A on a public address behind its own host firewall that drops inbound SYNs",
        routers=(RouterSpec("rtrB", _PP, Firewall.DROP),),
        hosts=(HostSpec("cliA", None, firewall=Firewall.DROP), HostSpec("cliB", "rtrB")),
        expect="direct",
        why="a stateful host firewall, like a NAT's, lets in the SYN that answers one the "
        "host sent: B's early SYN is dropped, A's own dial to B opens the way",
    ),
    LabSpec(
        name="host-fw-reject",
        summary="A on a public address, its host firewall resets inbound SYNs; B cone + drop",
        routers=(RouterSpec("rtrB", _PP, Firewall.DROP),),
        hosts=(HostSpec("cliA", None, firewall=Firewall.REJECT), HostSpec("cliB", "rtrB")),
        expect="direct",
        why="B's early SYN is reset by A's firewall and the reset clears B's router mapping, "
        "as in cone-rst; A's own SYN to B, or B's redial after A has dialed, gets through",
    ),
    LabSpec(
        name="proxy-only",
        summary="A's network lets nothing out but its HTTP proxy; rdv goes through CONNECT",
        routers=(
            RouterSpec("rtrA", _PP, Firewall.DROP, allow_out=("proxy",)),
            RouterSpec("rtrB", _PP, Firewall.DROP),
        ),
        hosts=(
            HostSpec("cliA", "rtrA", proxy="proxy"),
            HostSpec("cliB", "rtrB"),
            HostSpec("proxy", None, runs_proxy=True),
        ),
        expect="relay",
        why="A's router drops every conn that is not to the proxy, so no direct SYN of either "
        "side can pass it; the rdv conn, and so the relay, runs inside the proxy's tunnel",
    ),
    _pair(
        "nat64",
        "A IPv6-only behind NAT64 (tayga, 2001:db8:64::/96); the server and B IPv4-only",
        RouterSpec("rtrA", NatKind.NAT64, Firewall.DROP),
        RouterSpec("rtrB", _PP, Firewall.DROP),
        expect="direct",
        why="A reaches every IPv4 address through the NAT64 prefix, the translation keeps "
        "ports and its masquerade behaves like a cone NAT: A's SYNs to B's synthesized "
        "address and B's SYNs to A's observed address meet as in cone-fw",
    ),
    LabSpec(
        name="two-uplinks",
        summary="A on wifi (default route, lets out only the server) and on LTE with a "
        "public address; B public",
        routers=(RouterSpec("rtrA", _PP, Firewall.DROP, allow_out=("srv",)),),
        hosts=(HostSpec("cliA", "rtrA", uplinks=(INTERNET,)), HostSpec("cliB", None)),
        expect="direct",
        why="the default route's network blocks direct conns, the second uplink does not: "
        "A offers its LTE address and dials B from it too, bound to that interface",
    ),
    LabSpec(
        name="two-uplinks-nat",
        summary="A on wifi (default route, lets out only the server) and on LTE behind a "
        "carrier NAT (cone + drop); B cone + drop",
        routers=(
            RouterSpec("rtrA", _PP, Firewall.DROP, allow_out=("srv",)),
            RouterSpec("rtrB", _PP, Firewall.DROP),
            RouterSpec("rtrL", _PP, Firewall.DROP),
        ),
        hosts=(HostSpec("cliA", "rtrA", uplinks=("rtrL",)), HostSpec("cliB", "rtrB")),
        expect="direct",
        why="only the LTE path can carry a direct conn, and only the server can tell where the "
        "carrier's NAT maps A's port: A asks it from the LTE uplink before the request and "
        "offers the answer, so B aims its SYNs there and takes A's SYN from it",
    ),
    LabSpec(
        name="vpn",
        summary="A's default route goes through a VPN tunnel (TUN over UDP) that NATs out; "
        "B cone + drop",
        routers=(RouterSpec("rtrA", _PP, Firewall.DROP), RouterSpec("rtrB", _PP, Firewall.DROP)),
        hosts=(
            HostSpec("cliA", "rtrA", vpn="vpn"),
            HostSpec("cliB", "rtrB"),
            HostSpec("vpn", None, runs_vpn=True),
        ),
        expect="direct",
        why="the concentrator's NAT keeps ports and filters like a home router, so the "
        "server sees the tunnel's public side and the simultaneous open works through it; "
        "the tunnel address 10.8.0.2 is private and unreachable for B",
    ),
)

#: Every preset by name, in listing order.
PRESETS: Final[dict[str, LabSpec]] = {p.name: p for p in _PRESET_LIST}


def get_preset(name: str) -> LabSpec:
    """The preset called ``name``.

    Raises:
        LabSpecError: for an unknown name (the message lists the known ones).
    """
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise LabSpecError(f"unknown lab preset {name!r} (known: {known})") from None
