"""The two-sided diagnosis over a real session on loopback (docs/PROTOCOL.md section 15.5)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rdv_core.doctor import predict, render_verdict, verdict
from rdv_core.events import (
    Candidate,
    CandidateFailed,
    CandidateSkipped,
    DialRetried,
    Event,
    FastStartNegotiated,
    Picked,
    RelayRetired,
    UpgradeAttempt,
    Upgraded,
    UpgradeFailed,
    UpgradeStarted,
    VerdictReached,
    read_jsonl,
)
from rdv_core.session import _frames as fr
from rdv_core.session._diagnosis import read_body

from tests.session_support import session_pair, stream_pair
from tests.test_doctor_units import CONE_RST, SYMMETRIC, _report

RELAY = Candidate(0, "203.0.113.10:7000", "relay", "relay")
PEER = Candidate(1, "203.0.113.12:41921", "public4", "observed")


def _race(outcome: str) -> list[Event]:
    events: list[Event] = [DialRetried(0.01, PEER, n, "refused", 111) for n in range(1, 13)]
    if outcome == "relay":
        events += [CandidateFailed(1.0, PEER, "cancelled"), Picked(1.0, RELAY, True, 1.0)]
    else:
        events.append(Picked(0.1, PEER, False, 0.1))
    return events


async def test_reports_and_events_cross_the_session(tmp_path: Path) -> None:
    ours, theirs = _report(**SYMMETRIC), _report(**{**CONE_RST, "observed": "9.9.9.2:1"})
    async with stream_pair() as ends, session_pair(ends, tmp_path) as (a, b):
        assert a.diagnosis.peer_supports and b.diagnosis.peer_supports
        assert a.diagnosis.send(ours, _race("relay"))
        assert b.diagnosis.send(theirs, _race("relay")[:3])
        got_b = await b.diagnosis.received(5)
        got_a = await a.diagnosis.received(5)
        await a.send_chat("still works")  # the session goes on
    assert got_a is not None and got_b is not None
    assert got_b.report is not None and got_b.report.to_json() == ours.to_json()
    assert got_a.report is not None and got_a.report.value("filtering") == "rst"
    assert [type(e) for e in got_b.events] == [type(e) for e in _race("relay")]
    prediction = predict(ours, got_a.report)
    v = verdict(prediction, _race("relay"), got_a.events, t=1.5)
    assert v.expect == "impossible" and v.outcome == "relay" and v.agrees is True
    assert "as predicted" in v.sentence
    assert any("refused x12" in line for line in v.ours)
    text = render_verdict(v)
    assert "predicted: impossible" in text and "verdict:" in text
    # The verdict is an event like any other: it survives the events JSONL.
    again = list(read_jsonl([json.dumps(v.to_json())]))
    assert again == [v] and isinstance(again[0], VerdictReached)


async def test_an_old_peer_gets_no_diagnosis_frame(tmp_path: Path) -> None:
    async with stream_pair() as ends, session_pair(ends, tmp_path) as (a, _b):
        a.diagnosis.peer_supports = False  # as with a peer whose hello lacks the feature
        assert not a.diagnosis.send(_report(**SYMMETRIC), [])
        assert await a.diagnosis.received(0.05) is None


def test_a_lying_peer_cannot_break_anything() -> None:
    bad = read_body(
        {"v": 1, "report": {"version": 1, "mapping": "x"}, "events": [{"type": "Nope"}, 5]}
    )
    assert bad.report is None and bad.events == ()
    assert read_body({"v": 9}).report is None
    frame = fr.decode(fr.encode(fr.Diagnosis({"v": 1, "report": None, "events": []})))
    assert isinstance(frame, fr.Diagnosis) and frame.body["v"] == 1


def test_verdict_without_the_peers_report_and_against_the_prediction() -> None:
    v = verdict(None, _race("direct"), None)
    assert v.agrees is None and "no prediction" in v.sentence
    wrong = predict(_report(**SYMMETRIC), _report(**{**SYMMETRIC, "observed": "9.9.9.2:1"}))
    v = verdict(wrong, _race("direct"), None)
    assert v.agrees is False and "against the prediction" in v.sentence


def _fast_start(*tail: Event) -> list[Event]:
    return [
        FastStartNegotiated(0.01, True),
        Picked(0.01, RELAY, True, 0.01),
        FastStartNegotiated(0.02, True),
        UpgradeStarted(0.02, (PEER.addr,)),
        UpgradeAttempt(0.03, 1, 0.002),
        DialRetried(0.04, PEER, 1, "refused", 111),
        *tail,
    ]


def test_the_verdict_after_fast_start_tells_where_the_stream_ended() -> None:
    prediction = predict(_report(**CONE_RST), _report(**{**CONE_RST, "observed": "9.9.9.2:1"}))
    switched = _fast_start(Upgraded(0.09, PEER, PEER.addr, 0.084, 2), RelayRetired(0.1, 0.01))
    v = verdict(prediction, switched, None)
    assert v.outcome == "direct" and v.chosen == PEER.addr
    assert "after 84 ms on the relay" in v.sentence
    assert v.ours[0].startswith("fast start: relay from the first byte, switched to p2p")
    assert "after 84 ms (attempt 2)" in v.ours[0]
    # Only the peer's events saw the switch (ours were cut short): the same verdict.
    assert verdict(prediction, _fast_start(), switched).outcome == "direct"
    # A direct path that died before it was proven: the stream stayed on the relay.
    died = _fast_start(
        Upgraded(0.09, PEER, PEER.addr, 0.084, 1),
        UpgradeFailed(0.2, 1, "the direct path died before it was proven", False),
    )
    v = verdict(prediction, died, None)
    assert v.outcome == "relay" and "fast start found no direct path" in v.sentence
    assert "died before it was proven" in v.ours[0]
    # Classic races are told as before.
    assert "fast start" not in " ".join(verdict(prediction, _race("relay"), None).ours)


@pytest.mark.parametrize("fast", [False, True], ids=["classic", "fast-start"])
async def test_send_and_receive_explain(tmp_path: Path, fast: bool) -> None:
    from tests.doctor_support import probe_server
    from tests.session_support import make_file
    from tests.test_session_cli import rdv

    make_file(tmp_path / "a.bin", 1000, 1)
    events = tmp_path / "send.jsonl"
    async with probe_server("native") as env:
        # With fast start the session begins on the relay; the verdict waits for the
        # upgrade and tells the direct path the stream moved to, and when.
        mode = "--fast-start" if fast else "--no-fast-start"
        common = ("--server", env.url, "--spaces", "loopback4", "--explain", mode)
        sending = rdv(
            "send",
            str(tmp_path / "a.bin"),
            "--code",
            "9-fox-opal",
            "--events",
            str(events),
            *common,
        )
        receiving = rdv("receive", "9-fox-opal", "--dir", str(tmp_path / "dl"), "--yes", *common)
        (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(sending, receiving)
    assert rc_s == 0 and rc_r == 0, err_s + err_r
    for err in (err_s, err_r):
        assert "doctor: No NAT" in err, err
        assert "predicted: direct" in err and "verdict: Direct via 127.0.0.1:" in err, err
        assert "the peer's candidates:" in err, err
        assert ("ms on the relay), as predicted" in err) is fast, err
        assert ("fast start: relay from the first byte, switched to p2p 127.0.0.1:" in err) is (
            fast
        ), err
    found = [e for e in read_jsonl(events.read_text().splitlines())]
    kinds = [type(e).__name__ for e in found]
    assert kinds.count("DoctorReported") == 2 and "VerdictReached" in kinds
    assert not any("fox-opal" in line for line in events.read_text().splitlines())


def test_the_verdict_names_the_trouble_of_the_candidates_that_mattered() -> None:
    # cone-rst both sides: "possible", the public4 candidate should win. Our private4
    # candidate (the peer's other LAN) is unreachable, as in every race between two
    # networks; the public4 one got no answer. The sentence must be about the latter.
    prediction = predict(_report(**CONE_RST), _report(**{**CONE_RST, "observed": "9.9.9.2:1"}))
    assert prediction.expect == "possible" and prediction.winner == "public4"
    lan = Candidate(2, "10.0.2.2:41921", "private4", "self")
    events: list[Event] = [
        CandidateFailed(0.01, lan, "unreachable", 101),
        CandidateFailed(1.0, PEER, "cancelled"),
        Picked(1.0, RELAY, True, 1.0),
    ]
    v = verdict(prediction, events, None)
    assert v.outcome == "relay"
    assert "unreachable" not in v.sentence, v.sentence
    assert (
        "this time the public4 SYNs got no answer before the relay was picked. To go direct: "
        "a firewall rule on both sides that drops unsolicited inbound SYNs" in v.sentence
    ), v.sentence
    # Fast start: the relay was picked at once; the SYNs ended with the upgrade's attempts.
    fast = [e for e in _fast_start() if not isinstance(e, DialRetried)] + [
        CandidateFailed(0.05, lan, "unreachable", 101),
        CandidateFailed(3.0, PEER, "cancelled"),
        UpgradeFailed(3.0, 3, "no conn to the peer could be used", True),
    ]
    v = verdict(prediction, fast, None)
    assert v.outcome == "relay" and "fast start found no direct path" in v.sentence
    assert "the public4 SYNs got no answer before fast start's attempts ended. To go" in v.sentence


def test_the_verdict_text_folds_lines_that_differ_only_by_port() -> None:
    lan = [Candidate(10 + i, f"10.0.2.2:{40000 + i}", "private4", "self") for i in range(5)]
    wan = [Candidate(20 + i, f"203.0.113.12:{40000 + i}", "public4", "observed") for i in range(2)]
    six = Candidate(30, "[2001:db8::2]:40000", "public6", "self")
    events: list[Event] = [CandidateFailed(0.01, c, "unreachable", 101) for c in lan]
    events += [CandidateFailed(1.0, c, "cancelled") for c in [*wan, six]]
    events.append(Picked(1.0, RELAY, True, 1.0))
    v = verdict(None, events, None)
    assert len(v.ours) == 8  # the event keeps every candidate
    text = render_verdict(v).splitlines()
    assert text[2:] == [
        "    10.0.2.2 private4, 5 ports (40000, 40001, 40002, +2): unreachable (errno 101)",
        "    203.0.113.12 public4, 2 ports (40000, 40001): cancelled",
        "    [2001:db8::2]:40000 public6: cancelled",
    ], text


@pytest.mark.parametrize("width", [60, 80])
def test_the_verdict_text_wraps_under_its_own_column(width: int) -> None:
    # `rdv send --explain` at 80 columns: the terminal folded the prediction, the verdict and
    # each candidate's story back to column 0, under the headings.
    mine = [Candidate(1, "127.0.0.1:45153", "loopback4", "self")]
    theirs = Candidate(2, "[::1]:45355", "loopback6", "self")
    events: list[Event] = [
        CandidateSkipped(0.01, theirs, "the IPv4 loopback candidate reached the peer: "
                         "the same host and listener"),
        CandidateSkipped(0.02, mine[0], "4-tuple in use (EADDRNOTAVAIL): the peer's SYN already "
                         "reached our listener, its conn arrives as inbound"),
        Picked(1.0, RELAY, True, 1.0),
    ]  # fmt: skip
    v = verdict(None, events, events)
    whole, wrapped = render_verdict(v), render_verdict(v, width)
    assert whole.split() == wrapped.split()  # the same words, only the line breaks moved
    lines = wrapped.splitlines()
    assert max(len(line) for line in lines) <= width, wrapped
    assert len(lines) > len(whole.splitlines())  # something did need to wrap
    heads = ("verdict: ", "predicted: ", "  our candidates:", "  the peer's candidates:")
    for line in lines:
        # A line starts a piece, or continues one under its text: never at column 0.
        assert line.startswith(heads) or line.startswith("    "), wrapped


@pytest.mark.parametrize("mode", ["--fast-start", "--no-fast-start"])
async def test_a_dialer_without_direct_candidates_still_gets_the_peers_side(
    tmp_path: Path, mode: str
) -> None:
    """``rdv send --spaces none --explain`` to ``rdv receive --explain``: the receiver (the
    accepter) waited 10 s for quick attempts the sender never made, the sender gave up on its
    report after 5 s ("no prediction (the peer sent no doctor report)"), sent, closed, and the
    receiver said "no verdict: the session is closed" (docs/PROTOCOL.md section 16.8); then
    the receiver's verdict blamed nobody ("no direct conn came up in time"), or, in a classic
    race, a router ("SYNs were refused (reset by a router)": the sender's closed port)."""
    import time

    from tests.doctor_support import probe_server
    from tests.session_support import make_file
    from tests.test_session_cli import rdv

    make_file(tmp_path / "a.bin", 1000, 1)
    async with probe_server("native") as env:
        common = ("--server", env.url, "--explain", mode)
        started = time.monotonic()
        sending = rdv(
            "send", str(tmp_path / "a.bin"), "--code", "9-fox-opal", "--spaces", "none", *common
        )
        receiving = rdv(
            "receive", "9-fox-opal", "--dir", str(tmp_path / "dl"), "--yes",
            "--spaces", "loopback4", *common,
        )  # fmt: skip
        (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(sending, receiving)
        took = time.monotonic() - started
    assert rc_s == 0 and rc_r == 0, err_s + err_r
    said = " ".join(err_s.split())
    assert "no prediction" not in said, said
    assert "as predicted: no address space is enabled: the relay is forced." in said, said
    heard = " ".join(err_r.split())
    assert "no verdict" not in heard and "verdict: Relay" in heard, heard
    # The receiver's own network would have gone direct: the relay was the sender's doing,
    # said plainly ("no direct conn came up in time" blamed nobody).
    assert (
        "though direct was expected (both sides have the same address and no NAT: one "
        "machine): the peer had no direct candidate to try (none of ours is in its --spaces)."
    ) in heard, heard
    assert took < 5, took  # no side waits out a timeout
