"""Before a race: from both peers' reports, will a direct conn open, and which candidate wins?

docs/PROTOCOL.md section 15.4. Three answers:

- ``direct``: the physics allow it and nothing is left to chance (e.g. both NATs keep the
  port and silently drop early SYNs: the two SYNs meet in a simultaneous open);
- ``possible``: it depends on timing or luck (a router resets early SYNs, the path loses
  packets, or a finding is missing);
- ``impossible``: no direct path can open (both NATs pick a new port per destination, or one
  does and the other filters; one router and no hairpinning): the relay is the right answer.

The rules, in order (the first that applies decides):

1. Both behind one public IPv4 address (one router): the LAN addresses when private4 is
   enabled, else hairpinning decides.
2. IPv6 without NAT on both sides (and a v6 space enabled): stateful firewalls let a
   simultaneous open through, like a port-preserving NAT that drops.
3. One side not behind a NAT and open to unsolicited SYNs: the other side just dials it.
4. Both behind NATs: a mapping that depends on the destination on both sides is impossible;
   on one side, possible only if the other side's filter lets an unknown port in (``open``);
   endpoint-independent on both: ``drop`` on both is direct, ``rst``/``icmp`` is possible.

Loss seen by either doctor turns ``direct`` into ``possible``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Final, Literal

from rdv_core.doctor._report import Report
from rdv_core.wire import AddrSpace, parse_spaces, space_of

Expectation = Literal["direct", "possible", "impossible"]
EXPECTATIONS: Final = ("direct", "possible", "impossible")


@dataclass(frozen=True, slots=True)
class Prediction:
    """What to expect of a race between the two reports' machines.

    Attributes:
        expect: ``direct``, ``possible`` or ``impossible``.
        winner: The candidate that should win: ``private4``, ``public4``, ``private6``,
            ``public6`` (a direct one), or ``relay``.
        reason: One sentence, in plain words.
        advice: What would open a direct path (or make it sure), in words a user can act
            on: a flag, a firewall rule, a router setting; empty when nothing is to change.
    """

    expect: Expectation
    winner: str
    reason: str
    advice: str = ""

    def agrees_with(self, outcome: str) -> bool:
        """Does a race outcome (``direct``/``relay``/``failed``) agree with this prediction?

        A ``possible`` prediction agrees with either; ``failed`` agrees with nothing.
        """
        if outcome == "failed":
            return False
        if self.expect == "possible":
            return True
        return (self.expect == "direct") == (outcome == "direct")

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``{"expect", "winner", "reason", "advice"}``), as the doctor's
        report has it."""
        return {
            "expect": self.expect,
            "winner": self.winner,
            "reason": self.reason,
            "advice": self.advice,
        }

    @classmethod
    def from_json(cls, data: Any) -> Prediction:
        """A prediction from its JSON form (the peer's, so checked). Raises ValueError."""
        if not isinstance(data, dict) or data.get("expect") not in EXPECTATIONS:
            raise ValueError("bad prediction")
        winner, reason = data.get("winner"), data.get("reason")
        advice = data.get("advice", "")  # a prediction written before advice existed: none
        if not isinstance(winner, str) or not isinstance(reason, str) or len(reason) > 400:
            raise ValueError("bad prediction")
        if not isinstance(advice, str) or len(advice) > 400:
            raise ValueError("bad prediction")
        return cls(data["expect"], winner[:20], reason, advice)


@dataclass(frozen=True, slots=True)
class _Side:
    """One report reduced to what the rules need."""

    name: str
    nat: bool | None
    mapping: str | None
    filtering: str | None
    hairpin: bool | None
    public4: str | None
    v6_open: bool
    v6_space: str
    #: IPv6 not measured (no server URL with an IPv6 address) on a host that has an IPv6
    #: address of a space in ``v6_spaces``: its IPv6 candidates may still go direct.
    v6_unmeasured: bool
    v6_spaces: frozenset[str]
    sequential: bool
    lossy: bool
    rtt4: float | None
    rtt6: float | None
    proxy_only: bool = False
    filtering6: str | None = None

    @property
    def whose(self) -> str:
        return "our" if self.name == "we" else "the peer's"

    def verb(self, plural: str, singular: str) -> str:
        """``we lose`` / ``the peer loses``."""
        return f"{self.name} {plural if self.name == 'we' else singular}"

    @property
    def filter_box(self) -> str:
        """What answers a stranger's SYN on this side: its router, or its own firewall."""
        return "router" if self.nat is not False else "firewall"

    @property
    def varies(self) -> bool:
        return self.mapping in ("port-dependent", "address-dependent", "address-and-port-dependent")


def _side(name: str, report: Report) -> _Side:
    nat, mapping, filtering = (
        report.value("nat"),
        report.value("mapping"),
        report.value("filtering"),
    )
    hairpin, filtering6 = report.value("hairpin"), report.value("filtering6")
    rtt4 = [s.rtt_ms for s in report.servers if s.rtt_ms is not None and s.tcp4.value is True]
    rtt6 = [s.rtt_ms for s in report.servers if s.rtt_ms is not None and s.tcp6.value is True]
    return _Side(
        name=name,
        nat=nat if isinstance(nat, bool) else None,
        mapping=mapping if isinstance(mapping, str) else None,
        filtering=filtering if isinstance(filtering, str) else None,
        hairpin=hairpin if isinstance(hairpin, bool) else None,
        public4=report.observed4,
        v6_open=report.value("ipv6") is True and report.value("nat6") is False,
        v6_space="public6" if report.local_addrs.get("public6") else "private6",
        v6_unmeasured=report.value("ipv6") is None,
        v6_spaces=frozenset(k for k in ("public6", "private6") if report.local_addrs.get(k)),
        sequential=report.value("allocation") == "sequential",
        lossy=report.value("loss") is True,
        rtt4=min(rtt4) if rtt4 else None,
        rtt6=min(rtt6) if rtt6 else None,
        proxy_only=report.proxy_only,
        filtering6=filtering6 if isinstance(filtering6, str) else None,
    )


def _lossy(prediction: Prediction, a: _Side, b: _Side) -> Prediction:
    if prediction.expect != "direct" or not (a.lossy or b.lossy):
        return prediction
    # Both doctors saw loss on the lab's loss20 (20 % per router): "we lose packets" told
    # half of it, and the peer's half looked clean.
    who = "both sides lose" if a.lossy and b.lossy else (a if a.lossy else b).verb("lose", "loses")
    where = "both sides' links" if a.lossy and b.lossy else f"{(a if a.lossy else b).whose} link"
    return Prediction(
        "possible",
        prediction.winner,
        f"{prediction.reason}, but {who} packets: a lost SYN costs a "
        "1 s retransmission, which may let the relay win",
        f"find what loses packets on {where} (Wi-Fi, a saturated uplink); with fast start "
        "(--fast-start) the stream starts on the relay and moves when a SYN gets through",
    )


def predict(ours: Report, theirs: Report, spaces: AddrSpace = AddrSpace.DEFAULT) -> Prediction:
    """The prediction for a race between ``ours`` and ``theirs`` with ``spaces`` enabled.

    With several uplinks on a side (docs/PROTOCOL.md 15.8) the race dials from each, so the
    best pair of paths decides, and the reason names its uplink: the default route's
    findings alone told the wifi's story while the LTE uplink carried the direct path.
    """
    best: tuple[tuple[int, int, int], Prediction, Report, Report] | None = None
    for i, path_a in enumerate(ours.paths):
        for j, path_b in enumerate(theirs.paths):
            found = _predict_pair(path_a, path_b, spaces)
            rank = (_RANK[found.expect], _openness(path_a) + _openness(path_b), -(i + j))
            if best is None or rank > best[0]:
                best = (rank, found, path_a, path_b)
    assert best is not None
    _, found, path_a, path_b = best
    if len(ours.paths) == 1 and len(theirs.paths) == 1:
        return found
    via = [
        f"{whose} uplink {path.uplink}"
        for whose, path, report in (("our", path_a, ours), ("the peer's", path_b, theirs))
        if len(report.paths) > 1 and path.uplink
    ]
    if not via:
        return found
    reason = f"via {' and '.join(via)}: {found.reason}{_why_not_first(ours, path_a)}"
    return Prediction(found.expect, found.winner, reason[:MAX_REASON], found.advice)


def _why_not_first(ours: Report, chosen: Report) -> str:
    """Why our default route lost to another uplink when it could not be told from its
    findings (the lab's two-uplinks-nat: both cone + drop, the wifi lets out only the server)."""
    first = ours.paths[0]
    if chosen is first:
        return ""
    reached = [
        sum(1 for s in p.servers if s.tcp4.value is True or s.tcp6.value is True)
        for p in (first, chosen)
    ]
    if reached[0] >= reached[1]:
        return ""
    name = first.uplink or "the default route"
    return (
        f" ({name} reached only {reached[0]} of {len(first.servers)} servers: its network "
        "lets out only some destinations)"
    )


#: A prediction's reason is at most this long (read back by :meth:`Prediction.from_json`).
MAX_REASON: Final = 400
_RANK: Final = {"direct": 2, "possible": 1, "impossible": 0}


def _openness(path: Report) -> int:
    """How open one path is, to choose between pairs of equal expectation: the servers it
    reached (a network that lets out only the server reaches fewer of them: the lab's
    two-uplinks wifi reached 1 of 2), then no NAT, then filtering that lets SYNs in."""
    reached = sum(1 for s in path.servers if s.tcp4.value is True or s.tcp6.value is True)
    return 4 * reached + (path.value("nat") is False) + 2 * (path.value("filtering") == "open")


def _predict_pair(ours: Report, theirs: Report, spaces: AddrSpace) -> Prediction:
    a, b = _side("we", ours), _side("the peer", theirs)
    return _lossy(_predict(a, b, spaces), a, b)


def _predict(a: _Side, b: _Side, spaces: AddrSpace) -> Prediction:
    v6 = spaces & (AddrSpace.PUBLIC6 | AddrSpace.PRIVATE6)
    v4 = spaces & (AddrSpace.PUBLIC4 | AddrSpace.PRIVATE4 | AddrSpace.LOOPBACK4 | AddrSpace.LINK4)
    if spaces & AddrSpace.NONE or not (v4 or v6):
        return Prediction(
            "impossible",
            "relay",
            "no address space is enabled: the relay is forced",
            "enable address spaces for direct conns (--spaces default)",
        )
    for side in (a, b):
        if side.proxy_only:
            return Prediction(
                "impossible",
                "relay",
                f"{side.verb('reach', 'reaches')} the server only through an HTTP proxy: "
                "nothing but the proxy gets out, so no direct conn can form",
                f"nothing in rdv: {side.whose} network must let TCP out beyond its proxy "
                "(or use another uplink, --interface); until then the relay is the way",
            )
    if a.v6_open and b.v6_open and v6:
        winner = a.v6_space if a.v6_space == b.v6_space else "public6"
        four = _predict_v4(a, b, spaces) if v4 else None
        if four is not None and four.expect == "direct" and (a.rtt4 or 0) < (a.rtt6 or 0):
            return four
        resets = [side for side in (a, b) if side.filtering6 in ("rst", "icmp")]
        if resets:
            # A firewall that resets early SYNs makes IPv6 the lottery cone-rst is for IPv4
            # (the measured filtering6, docs/PROTOCOL.md 15.2): a direct IPv4 path wins.
            if four is not None and four.expect == "direct":
                return four
            who = (
                "both IPv6 firewalls answer"
                if len(resets) == 2
                else (f"{resets[0].whose} IPv6 firewall answers")
            )
            return Prediction(
                "possible",
                winner,
                f"both sides reach the internet over IPv6 without NAT, but {who} early SYNs "
                "with a reset: the simultaneous open is a timing lottery",
                "an IPv6 firewall rule that drops unsolicited inbound SYNs instead of "
                "rejecting them makes the simultaneous open sure",
            )
        return Prediction(
            "direct",
            winner,
            "both sides reach the internet over IPv6 without NAT: the stateful firewalls let a "
            "simultaneous open through",
        )
    unmeasured = _v6_unmeasured(a, b, spaces) if v6 else None
    if not v4:
        if unmeasured is not None:
            return unmeasured
        return Prediction(
            "impossible",
            "relay",
            "only IPv6 is enabled, and one side has no open IPv6",
            "enable IPv4 too (--spaces default), or give the side without IPv6 an IPv6 address",
        )
    four = _predict_v4(a, b, spaces)
    if four.expect == "impossible" and unmeasured is not None:
        # An IPv4 dead end says nothing of IPv6 that was never measured (the server URL is
        # an IPv4 address, as `--explain` with `--server http://203.0.113.10:7000` had).
        return Prediction(
            "possible", unmeasured.winner, f"{four.reason}; but {unmeasured.reason}", four.advice
        )
    return four


def _v6_unmeasured(a: _Side, b: _Side, spaces: AddrSpace) -> Prediction | None:
    """``possible`` over IPv6 when neither side is known to lack it and one was not measured.

    Not measured is not "no": the lab's ipv6 preset, with --explain against the server's
    IPv4 address, predicted "impossible: one side has no open IPv6" and went direct over it.
    """
    usable = [frozenset(s for s in side.v6_spaces if parse_spaces(s) & spaces) for side in (a, b)]
    if not all(usable) or not (a.v6_unmeasured or b.v6_unmeasured):
        return None
    if not all(side.v6_open or side.v6_unmeasured for side in (a, b)):
        return None
    if a.v6_unmeasured and b.v6_unmeasured:
        said = "neither side's IPv6 was measured"
    else:
        said = f"{(a if a.v6_unmeasured else b).whose} IPv6 was not measured"
    common = usable[0] & usable[1]
    winner = "public6" if "public6" in common or not common else "private6"
    return Prediction(
        "possible",
        winner,
        f"{said} (no server URL with an IPv6 address), and both sides have an IPv6 "
        "address: an IPv6 candidate may go direct",
        "give rdv doctor a server URL with an IPv6 address (a name with an AAAA record) to "
        "measure IPv6",
    )


def _predict_v4(a: _Side, b: _Side, spaces: AddrSpace) -> Prediction:
    if a.public4 is not None and a.public4 == b.public4 and a.nat is False and b.nat is False:
        space = space_of(ipaddress.ip_address(a.public4)).label
        return Prediction(
            "direct", space, "both sides have the same address and no NAT: one machine"
        )
    if a.public4 is not None and a.public4 == b.public4 and a.nat and b.nat:
        if spaces & AddrSpace.PRIVATE4:
            return Prediction(
                "direct",
                "private4",
                "both sides are behind one router: the LAN addresses reach each other",
            )
        if a.hairpin and b.hairpin:
            return Prediction(
                "direct", "public4", "one router, and it hairpins: the public address works"
            )
        if a.hairpin is False or b.hairpin is False:
            return Prediction(
                "impossible",
                "relay",
                "both sides are behind one router that does not hairpin, and LAN addresses are off",
                "enable the LAN addresses (--spaces with private4, as the default has), or turn "
                "on hairpinning (NAT loopback) in the router",
            )
        return Prediction("possible", "public4", "one router; hairpinning was not measured")
    for this, other in ((a, b), (b, a)):
        if this.nat is False and this.filtering == "open":
            return Prediction(
                "direct",
                "public4",
                f"{this.verb('are', 'is')} on the internet without NAT or filter: "
                f"{other.verb('simply dial', 'simply dials')} in",
            )
    if a.nat is None or b.nat is None or a.mapping is None or b.mapping is None:
        missing = a if a.nat is None or a.mapping is None else b
        return Prediction(
            "possible",
            "public4",
            f"{missing.whose} NAT's mapping was not measured",
            "start the server with --probe-port and --dial-back, so that the doctor can "
            "measure both sides",
        )
    if a.varies and b.varies:
        return Prediction(
            "impossible",
            "relay",
            "both routers give every destination a new public port (symmetric NATs): neither "
            "side can know where to send its SYN",
            "one side needs a router that keeps one public port per local port "
            "(endpoint-independent mapping), a public address that takes inbound SYNs, or IPv6; "
            "else the relay is the right path",
        )
    if a.varies or b.varies:
        sym, cone = (a, b) if a.varies else (b, a)
        if sym.sequential and cone.filtering in ("drop", "open"):
            # Not a lottery: without --predict-ports on the sequential side the race relays
            # every time (the lab's sequential-a, 0/3 direct), with it, it goes direct.
            return Prediction(
                "possible",
                "public4",
                f"{sym.whose} router gives every destination a new port, but the next one in "
                f"line: direct only when {sym.verb('run', 'runs')} with --predict-ports, so "
                f"that {cone.name} can aim at it",
                f"run {sym.whose} side (rdv send, receive, dial or accept) with --predict-ports",
            )
        if cone.filtering == "open":
            return Prediction(
                "direct",
                "public4",
                f"{sym.whose} router picks a new port per destination, but "
                f"{cone.verb('let', 'lets')} unsolicited SYNs in",
            )
        if cone.filtering is None:
            return Prediction(
                "possible",
                "public4",
                f"{sym.whose} router is symmetric; {cone.whose} filtering was not measured",
                "start the server with --dial-back, so that the doctor can measure filtering",
            )
        return Prediction(
            "impossible",
            "relay",
            f"{sym.whose} router gives every destination a new port, so the SYN from that new "
            f"port meets {cone.whose} filter ({cone.filtering})",
            f"put {sym.whose} side behind a router that keeps "
            "one public port per local port (endpoint-independent mapping), or use IPv6; else "
            "the relay is the right path",
        )
    if "open" in (a.filtering, b.filtering):
        return Prediction(
            "direct", "public4", "the NATs keep their mappings and one side lets SYNs in"
        )
    resets = [s for s in (a, b) if s.filtering in ("rst", "icmp")]
    kept = _ports_kept(a, b)
    if resets:
        if len(resets) == 2:
            routers = "both routers answer" if a.nat and b.nat else "both sides answer"
            where = "on both sides"
        else:
            routers = f"{resets[0].whose} {resets[0].filter_box} answers"
            where = f"in {resets[0].whose} {resets[0].filter_box}"
        # An ICMP reject refuses the connect as a reset does (docs/PROTOCOL.md 15.1).
        how = "a reset" if all(s.filtering == "rst" for s in resets) else "a reset or ICMP error"
        return Prediction(
            "possible",
            "public4",
            f"{kept}, but {routers} early SYNs with {how}: the "
            "simultaneous open is a timing lottery that quick redials usually win",
            f"a firewall rule {where} that drops unsolicited inbound SYNs instead of "
            "rejecting them makes it sure; with fast start (--fast-start) the stream starts "
            "on the relay meanwhile",
        )
    if a.filtering == "drop" and b.filtering == "drop":
        if a.nat and b.nat:
            said = "both NATs keep the port the server saw and drop early SYNs silently"
        else:
            said = f"{kept}, and both sides drop early SYNs silently"
        return Prediction("direct", "public4", f"{said}: the two SYNs meet in a simultaneous open")
    return Prediction(
        "possible",
        "public4",
        f"{kept}; filtering was not measured",
        "start the server with --dial-back, so that the doctor can measure filtering",
    )


def _ports_kept(a: _Side, b: _Side) -> str:
    """Why the port the server saw is the one a peer reaches, for this pair.

    Only "the NATs" when both sides have one: a host on a public address behind its own
    firewall (the lab's host-fw-*) has no NAT, and the sentence said it had.
    """
    if a.nat and b.nat:
        return "the NATs keep their ports"
    if a.nat or b.nat:
        nat, bare = (a, b) if a.nat else (b, a)
        return f"{nat.whose} NAT keeps its ports and {bare.verb('have', 'has')} no NAT"
    return "neither side has a NAT"
