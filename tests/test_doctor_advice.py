"""The prediction and verdict on the lab's presets as ``--explain`` sees them: what a
finding not measured means, who loses packets, and what the user can change.

Each case is one the lab showed (``rdv send --explain`` / ``rdv receive --explain`` in
``rdv lab shell PRESET``): the pure logic alone was wrong, so these are unit tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rdv_core.doctor import Prediction, Report, predict, summary, verdict
from rdv_core.events import Candidate, CandidateFailed, Event, Picked
from rdv_core.lab._doctor_table import doctor_row
from rdv_core.wire import AddrSpace, parse_spaces

from tests.test_doctor_units import CONE_DROP, SYMMETRIC, _report

PEER = Candidate(1, "203.0.113.12:41921", "public4", "observed")
RELAY = Candidate(0, "203.0.113.10:7000", "relay", "relay")


def _with(report: Report, **addrs: tuple[str, ...]) -> Report:
    return dataclasses.replace(report, local_addrs={"private4": ("10.0.1.2",), **addrs})


def _relayed() -> list[Event]:
    return [CandidateFailed(1.0, PEER, "cancelled"), Picked(1.0, RELAY, True, 1.0)]


def test_ipv6_not_measured_is_not_no_ipv6() -> None:
    # The ipv6 preset with --explain against the server's IPv4 address: no IPv6 measured,
    # yet both hosts have an IPv6 (ULA) address. It said "impossible: one side has no open
    # IPv6" and went direct over [fd00:2::2].
    ours = _with(_report(**CONE_DROP), private6=("fd00:1::2",))
    theirs = _with(_report(**{**CONE_DROP, "observed": "9.9.9.2:1"}), private6=("fd00:2::2",))
    six = predict(ours, theirs, parse_spaces("private6"))
    assert (six.expect, six.winner) == ("possible", "private6"), six.reason
    assert "neither side's IPv6 was measured" in six.reason
    assert "a server URL with an IPv6 address" in six.advice
    # A side with no IPv6 address at all: then it is impossible.
    bare = _with(_report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    assert predict(ours, bare, parse_spaces("private6")).expect == "impossible"
    # Symmetric NATs on both sides make IPv4 a dead end, not IPv6 that was not measured.
    sym = _with(_report(**SYMMETRIC), public6=("2001:db8:1::2",))
    sym2 = _with(_report(**{**SYMMETRIC, "observed": "9.9.9.2:1"}), public6=("2001:db8:2::2",))
    both = predict(sym, sym2, AddrSpace.DEFAULT)
    assert (both.expect, both.winner) == ("possible", "public6"), both.reason
    assert both.reason.startswith("both routers give every destination a new public port")
    # Without IPv6 addresses the IPv4 answer stands.
    plain = _report(**{**SYMMETRIC, "observed": "9.9.9.2:1"})
    assert predict(_report(**SYMMETRIC), plain).expect == "impossible"


def test_loss_on_both_sides_is_told_as_both() -> None:
    # loss20: both doctors saw a retransmission; the reason said "we lose packets".
    lossy = {**CONE_DROP, "loss": True}
    p = predict(_report(**lossy), _report(**{**lossy, "observed": "9.9.9.2:1"}))
    assert p.expect == "possible"
    assert "but both sides lose packets" in p.reason, p.reason
    one = predict(_report(**CONE_DROP), _report(**{**lossy, "observed": "9.9.9.2:1"}))
    assert "but the peer loses packets" in one.reason, one.reason


def test_a_sequential_nat_that_relayed_is_not_blamed_on_timing() -> None:
    # sequential-a without --predict-ports relays every time: the verdict said "it was
    # timing-dependent" and named no flag for the side that needs it.
    seq = {**SYMMETRIC, "allocation": "sequential"}
    p = predict(_report(**seq), _report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    assert p.expect == "possible"
    assert "direct only when we run with --predict-ports" in p.reason, p.reason
    v = verdict(p, _relayed(), None)
    assert "timing" not in v.sentence, v.sentence
    assert v.sentence.startswith("Relay; it could go either way: ")
    assert v.sentence.endswith(
        "To go direct: run our side (rdv send, receive, dial or accept) with --predict-ports."
    ), v.sentence
    theirs = predict(_report(**CONE_DROP), _report(**{**seq, "observed": "9.9.9.2:1"}))
    assert "when the peer runs with --predict-ports" in theirs.reason
    assert theirs.advice.startswith("run the peer's side")


def test_a_relay_verdict_says_what_to_change() -> None:
    # symmetric-a: "Relay, as predicted: ..." and nothing a user could do about it.
    p = predict(_report(**SYMMETRIC), _report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    v = verdict(p, _relayed(), None)
    assert v.sentence.startswith("Relay, as predicted: our router gives every destination")
    assert "To go direct: put our side behind a router that keeps one public port" in v.sentence
    # A direct outcome needs no advice; a direct prediction has none.
    direct = predict(_report(**CONE_DROP), _report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    assert direct.expect == "direct" and direct.advice == ""
    assert "To go direct" not in verdict(p, [Picked(0.1, PEER, False, 0.1)], None).sentence


def test_the_prediction_json_carries_the_advice_and_reads_an_older_one() -> None:
    p = predict(_report(**SYMMETRIC), _report(**{**SYMMETRIC, "observed": "9.9.9.2:1"}))
    assert p.advice and Prediction.from_json(p.to_json()) == p
    old: dict[str, Any] = {"expect": "direct", "winner": "public4", "reason": "r"}
    assert Prediction.from_json(old).advice == ""


def test_the_summary_of_a_public_host_tells_its_firewall() -> None:
    # host-fw-reject: "No NAT: direct conns work with peers that can reach you.", the same
    # words as host-fw-drop, while the prediction called it a timing lottery.
    bare = {"nat": False, "mapping": "none"}
    reject = summary(_report(**bare, filtering="rst"))
    assert reject.startswith("No NAT, but a firewall here rejects unsolicited SYNs"), reject
    assert "lottery" in reject
    drop = summary(_report(**bare, filtering="drop"))
    assert drop.startswith("No NAT; a firewall here drops unsolicited SYNs"), drop
    icmp = summary(_report(nat=True, mapping="endpoint-independent", filtering="icmp"))
    assert icmp.startswith("Your router keeps ports but rejects (ICMP) early SYNs"), icmp
    seq = summary(_report(**{**SYMMETRIC, "allocation": "sequential"}))
    assert "run rdv here with --predict-ports" in seq, seq


def test_a_direct_verdict_says_when_another_space_won() -> None:
    # dualstack-v4slow with --explain against the server's IPv4 address: predicted direct
    # (public4), it went direct over IPv6, and the verdict said only "as predicted".
    p = predict(_report(**CONE_DROP), _report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    six = Candidate(3, "[fd00:2::2]:36441", "private6", "self")
    v = verdict(p, [CandidateFailed(0.01, PEER, "cancelled"), Picked(0.1, six, False, 0.1)], None)
    assert v.sentence.startswith("Direct via [fd00:2::2]:36441, as predicted: "), v.sentence
    assert v.sentence.endswith("The private6 candidate won, not the predicted public4."), v.sentence
    same = verdict(p, [Picked(0.1, PEER, False, 0.1)], None)
    assert "candidate won" not in same.sentence


def test_lab_doctor_rows_show_the_advice_within_the_terminal() -> None:
    cells = ["symmetric-a", "APD/drop/hp no", "EI/drop/hp no", "ok"]
    cells += ["impossible relay", "0/3 direct 1108.8 ms", "yes"]
    p = predict(_report(**SYMMETRIC), _report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    for room in (40, 80, None):
        lines = doctor_row(cells, [], p.reason, room, p.advice)
        start = next(i for i, line in enumerate(lines) if "to go direct: " in line)
        assert lines[start].startswith("    to go direct: put our side"), lines
        if room is not None:
            assert max(map(len, lines)) <= room, max(lines, key=len)
            assert all(line.startswith(" " * 18) for line in lines[start + 1 :]), lines


def test_a_direct_prediction_that_relayed_says_what_to_change() -> None:
    # delay25 with a short --wait-p2p, or a firewall on the way the doctor cannot see:
    # "Relay, though direct was expected (...): SYNs got no answer before the relay was
    # picked." and no word of what to do.
    p = predict(_report(**CONE_DROP), _report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    assert p.expect == "direct" and p.advice == ""
    slow = verdict(p, _relayed(), None).sentence
    assert "though direct was expected" in slow
    assert slow.endswith(
        "To go direct: give the race longer (--wait-p2p 3s), or run both sides with "
        "--fast-start, which starts on the relay and keeps trying."
    ), slow
    refused = [CandidateFailed(1.0, PEER, "refused"), Picked(1.0, RELAY, True, 1.0)]
    reset = verdict(p, refused, None).sentence
    assert "(reset by a router or a firewall)" in reset, reset
    assert "To go direct: a router or firewall answers the SYNs with a reset" in reset, reset
