"""The NAT lab's pure parts: presets, plans, rulesets, netlink messages, outcome and summary.

These need no root; the namespace tests are in tests/natlab/.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from typing import Any

import pytest

from rdv_core.lab import (
    Firewall,
    HostSpec,
    Impairment,
    LabSpec,
    LabSpecError,
    NatKind,
    RouterSpec,
)
from rdv_core.lab import _nfqueue as nfqueue
from rdv_core.lab._builder import plan_lab, queue_rules
from rdv_core.lab._presets import PRESETS, get_preset
from rdv_core.lab._runner import (
    PresetResult,
    RunResult,
    direct_attempts,
    outcome_of,
    server_events_for,
)

ISSUE_PRESETS = [
    "cone-fw",
    "cone-rst",
    "cone-reject",
    "rst-far",
    "symmetric-a",
    "symmetric-both",
    "public-b",
    "same-lan",
    "same-lan-public",
    "ipv6",
    "dualstack-v4slow",
    "delay25",
    "loss20",
    # issue 17: the networks beyond NAT
    "host-fw-drop",
    "host-fw-reject",
    "proxy-only",
    "nat64",
    "two-uplinks",
    "two-uplinks-nat",
    "vpn",
]


def test_presets_have_exactly_the_issue_names_in_order() -> None:
    assert list(PRESETS) == ISSUE_PRESETS


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("cone-fw", "direct"),
        ("public-b", "direct"),
        ("same-lan", "direct"),
        ("ipv6", "direct"),
        ("dualstack-v4slow", "direct"),
        ("delay25", "direct"),
        ("symmetric-a", "relay"),
        ("symmetric-both", "relay"),
        ("same-lan-public", "relay"),
        ("host-fw-drop", "direct"),
        ("host-fw-reject", "direct"),
        ("proxy-only", "relay"),
        ("nat64", "direct"),
        ("two-uplinks", "direct"),
        ("two-uplinks-nat", "direct"),
        ("vpn", "direct"),
    ],
)
def test_preset_expectations(name: str, expect: str) -> None:
    assert get_preset(name).expect == expect


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(LabSpecError, match="known: cone-fw"):
        get_preset("cone")


def test_spec_validation() -> None:
    with pytest.raises(LabSpecError, match="unknown rtrZ"):
        LabSpec("x", "", (), (HostSpec("a", "rtrZ"), HostSpec("b")), "direct", "", "a", "b")
    with pytest.raises(LabSpecError, match="reserved"):
        LabSpec("x", "", (), (HostSpec("srv"), HostSpec("b")), "direct", "", "srv", "b")
    with pytest.raises(LabSpecError, match="not a host"):
        LabSpec("x", "", (), (HostSpec("a"), HostSpec("b")), "direct", "", "a", "c")
    with pytest.raises(LabSpecError, match="loss"):
        Impairment(loss=1.5)


def test_plan_addresses_and_namespaces() -> None:
    plan = plan_lab(get_preset("cone-fw"), owner_pid=4242, number=7)
    assert plan.ns("rtrA") == "rdvlab-4242x7-rtrA"
    assert set(plan.namespaces) == {"inet", "srv", "rtrA", "rtrB", "cliA", "cliB"}
    assert plan.host_addrs["cliA"].v4 == "10.0.1.2"
    assert plan.host_addrs["cliB"].v4 == "10.0.2.2"
    assert plan.router_wan["rtrB"].v4 == "203.0.113.12"
    assert plan.server_url == "http://203.0.113.10:7000"
    assert plan.describe_addr("203.0.113.12:5000") == "rtrB wan"
    # Hosts reach only their router; the internet is a bridge in its own namespace.
    assert "route add default via 10.0.1.1" in plan.batches[plan.ns("cliA")]
    assert "type bridge" in plan.batches[plan.ns("inet")]
    assert "ip_forward" not in str(plan.sysctls[plan.ns("cliA")])
    assert plan.sysctls[plan.ns("rtrA")]["net.ipv4.ip_forward"] == "1"
    for values in plan.sysctls.values():
        assert values["net.ipv6.conf.default.accept_dad"] == "0"


def test_plan_same_lan_and_public_hosts() -> None:
    same = plan_lab(get_preset("same-lan"), owner_pid=1, number=1)
    assert (same.host_addrs["cliA"].v4, same.host_addrs["cliB"].v4) == ("10.0.1.2", "10.0.1.3")
    public = plan_lab(get_preset("public-b"), owner_pid=1, number=1)
    assert public.host_addrs["cliB"].v4 == "203.0.113.20"
    v6 = plan_lab(get_preset("ipv6"), owner_pid=1, number=1)
    assert v6.host_addrs["cliB"].v6 == "fd00:2::2"
    assert "route add fd00:2::/64 via 2001:db8::12" in v6.batches[v6.ns("rtrA")]


def test_rulesets_follow_the_router_kind() -> None:
    def ruleset(name: str, router: str = "rtrA") -> str:
        plan = plan_lab(get_preset(name), owner_pid=1, number=1)
        return plan.nft[plan.ns(router)]

    cone = ruleset("cone-fw")
    assert 'oifname "wan" ip saddr 10.0.1.0/24 masquerade\n' in cone
    assert "ct state established,related accept" in cone
    assert "hook input" in cone and "hook forward" in cone
    assert "reject" not in cone
    assert "random,fully-random" in ruleset("symmetric-a", "rtrA")
    assert "random,fully-random" not in ruleset("symmetric-a", "rtrB")
    rst = ruleset("cone-rst")
    assert "masquerade" in rst and "filter" not in rst
    assert "reject with tcp reset" in ruleset("cone-reject")
    # nft 1.0.6: one statement per line, and never the reserved word `fwd`.
    assert " fwd" not in cone and ";" not in cone.replace("policy accept;", "").replace(
        "priority srcnat;", ""
    ).replace("priority filter;", "")


def test_queue_rules_per_family() -> None:
    assert set(queue_rules(frozenset({4}))) == {"iptables-restore"}
    assert set(queue_rules(frozenset({4, 6}))) == {"iptables-restore", "ip6tables-restore"}
    assert (
        "-p tcp -j NFQUEUE --queue-num 0 --queue-bypass"
        in queue_rules(frozenset({4}))["iptables-restore"]
    )


def test_with_delay_keeps_families_and_expectation() -> None:
    slow = get_preset("dualstack-v4slow").with_delay(40)
    assert {r.impairment.delay_ms for r in slow.routers} == {40.0}
    assert {r.impairment.families for r in slow.routers} == {frozenset({4})}
    assert slow.expect == "direct"


def test_custom_spec_builds_a_plan() -> None:
    spec = LabSpec(
        name="three",
        summary="three hosts behind one symmetric router",
        routers=(RouterSpec("r1", NatKind.RANDOM_PORT, Firewall.REJECT, Impairment(delay_ms=5)),),
        hosts=(HostSpec("h1", "r1"), HostSpec("h2", "r1"), HostSpec("h3", "r1")),
        dialer="h1",
        accepter="h3",
        expect="direct",
        why="same LAN",
    )
    plan = plan_lab(spec, owner_pid=1, number=1)
    assert plan.host_addrs["h3"].v4 == "10.0.1.4"
    assert plan.batches[plan.ns("r1")].count("master lan") == 3


def test_nfqueue_messages() -> None:
    bind, _params = nfqueue.config_messages(3)
    length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", bind)
    assert length == len(bind) and kind == (3 << 8) | 2 and flags == 0x5
    assert struct.unpack_from("!BBH", bind, 16) == (0, 0, 3)
    verdict = nfqueue.verdict_message(3, 77, nfqueue.NF_ACCEPT)
    assert struct.unpack_from("=HH", verdict, 20) == (12, 2)
    assert struct.unpack_from("!II", verdict, 24) == (nfqueue.NF_ACCEPT, 77)
    # A packet message as the kernel sends it: header attribute first, then others.
    attrs = struct.pack("=HH", 11, 1) + struct.pack("!IHB", 99, 0x0800, 0) + b"\0"
    attrs += struct.pack("=HH", 8, 3) + b"\0\0\0\1"
    body = struct.pack("!BBH", 2, 0, 3) + attrs
    packet = struct.pack("=IHHII", 16 + len(body), (3 << 8) | 0, 0, 0, 0) + body
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -16) + bytes(16)
    assert nfqueue.parse_messages(packet + packet + error) == ([99, 99], [16])


def _picked(is_relay: bool, addr: str, elapsed: float) -> dict[str, object]:
    return {
        "type": "Picked",
        "t": elapsed,
        "candidate": {"id": 1, "addr": addr, "space": "public4", "origin": "self"},
        "is_relay": is_relay,
        "elapsed_s": elapsed,
    }


def test_outcome_of_dialer_events() -> None:
    assert outcome_of([_picked(False, "203.0.113.12:4000", 0.0125)]) == (
        "direct",
        12.5,
        "203.0.113.12:4000",
        "public4",
    )
    assert outcome_of([_picked(True, "203.0.113.10:7000", 1.0)])[0] == "relay"
    assert outcome_of([{"type": "AttemptFailed", "t": 1.0, "reason": "x"}]) == (
        "failed",
        None,
        None,
        "",
    )


def test_server_events_are_filtered_by_token_and_pair() -> None:
    events: list[dict[str, Any]] = [
        {"type": "PeerJoined", "token": "a"},
        {"type": "PeerJoined", "token": "b"},
        {"type": "PairMatched", "token": "a", "pair_id": 4},
        {"type": "PairMatched", "token": "b", "pair_id": 5},
        {"type": "RelayEnded", "pair_id": 4},
        {"type": "RelayEnded", "pair_id": 5},
    ]
    assert [e["type"] for e in server_events_for(events, "a")] == [
        "PeerJoined",
        "PairMatched",
        "RelayEnded",
    ]


def test_summary_counts_percentiles_and_json_shape() -> None:
    result = PresetResult(get_preset("cone-fw"))
    for ms in (10.0, 20.0, 30.0, 40.0):
        result.runs.append(
            RunResult(
                "direct",
                ms,
                "203.0.113.12:1",
                {"dialer": [], "accepter": [], "server": []},
                data_ok=True,
                chosen_space="public4",
            )
        )
    result.runs.append(
        RunResult(
            "relay",
            1000.0,
            "203.0.113.10:7000",
            {"dialer": [], "accepter": [], "server": []},
            data_ok=True,
        )
    )
    result.runs.append(
        RunResult("failed", None, None, {"dialer": [], "accepter": [], "server": []})
    )
    s = result.summary()
    assert (s["direct"], s["relay"], s["failed"]) == (4, 1, 1)
    assert (s["p50_ms"], s["p90_ms"]) == (30.0, 1000.0)
    assert s["chosen"] == {"direct public4": 4, "relay": 1, "failed": 1}
    doc = result.to_json()
    assert set(doc) == {"preset", "runs", "summary"}
    assert set(doc["runs"][0]) == {"outcome", "connect_ms", "chosen", "events"}
    assert set(doc["runs"][0]["events"]) == {"dialer", "accepter", "server"}


def test_lab_command_is_headless_and_lists_presets() -> None:
    code = (
        "import sys, argparse, io, contextlib\n"
        "from rdv_tui.cli.commands import lab\n"
        "p = argparse.ArgumentParser(); s = p.add_subparsers(dest='command'); lab.add_parser(s)\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    rc = lab.run(p.parse_args(['lab', 'list']))\n"
        "assert rc == 0, rc\n"
        "assert not any(m.split('.')[0] in ('textual', 'rich') for m in sys.modules), 'ui import'\n"
        "print(out.getvalue())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    for name in ISSUE_PRESETS:
        assert any(line.startswith(name + " ") for line in lines), name
    assert "why:" in proc.stdout


def test_direct_attempts_explains_why_not_direct() -> None:
    def cand(addr: str, origin: str = "self") -> dict[str, object]:
        return {"id": 1, "addr": addr, "space": "public4", "origin": origin}

    events: list[dict[str, Any]] = [
        {"type": "DialStarted", "candidate": cand("10.0.2.2:1")},
        {"type": "CandidateFailed", "candidate": cand("10.0.2.2:1"), "reason": "unreachable"},
        {"type": "DialStarted", "candidate": cand("203.0.113.12:1")},
        {
            "type": "DialRetried",
            "candidate": cand("203.0.113.12:1"),
            "attempt": 2,
            "reason": "refused",
        },
        {
            "type": "DialRetried",
            "candidate": cand("203.0.113.12:1"),
            "attempt": 9,
            "reason": "refused",
        },
        {"type": "CandidateFailed", "candidate": cand("203.0.113.12:1"), "reason": "cancelled"},
        {"type": "DialStarted", "candidate": cand("203.0.113.13:1")},
        {"type": "CandidateFailed", "candidate": cand("203.0.113.13:1"), "reason": "cancelled"},
        {"type": "Picked", "candidate": cand("203.0.113.10:7000", "relay"), "is_relay": True},
    ]
    assert direct_attempts(events) == (
        "10.0.2.2:1 unreachable; 203.0.113.12:1 refused x8, cancelled; "
        "203.0.113.13:1 no answer (SYN dropped), cancelled"
    )


@pytest.mark.parametrize(
    ("hosts", "routers", "words"),
    [
        ((HostSpec("cliA", "rtrA", proxy="cliB"), HostSpec("cliB", None)), (), "runs no proxy"),
        (
            (HostSpec("cliA", "rtrA"), HostSpec("cliB", "rtrA", runs_proxy=True)),
            (),
            "must be on the internet",
        ),
        ((HostSpec("cliA", "rtrA", uplinks=("rtrA",)), HostSpec("cliB", None)), (), "bad uplink"),
        ((HostSpec("cliA", "rtrA", vpn="cliB"), HostSpec("cliB", None)), (), "VPN host"),
        (
            (HostSpec("cliA", "rtrA"), HostSpec("cliB", None)),
            (RouterSpec("rtrA", allow_out=("nowhere",)),),
            "allows out to unknown",
        ),
        (
            (HostSpec("cliA", "rtrA", uplinks=("rtrB",)), HostSpec("cliB", None)),
            (RouterSpec("rtrA", NatKind.NAT64), RouterSpec("rtrB")),
            "no extra uplinks behind NAT64",
        ),
    ],
)
def test_environment_cross_references_are_checked(
    hosts: tuple[HostSpec, ...], routers: tuple[RouterSpec, ...], words: str
) -> None:
    with pytest.raises(LabSpecError, match=words):
        LabSpec(
            name="bad",
            summary="",
            routers=routers or (RouterSpec("rtrA"),),
            hosts=hosts,
            expect="direct",
            why="",
        )
