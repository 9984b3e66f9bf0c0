"""Fast start whose direct path goes silent (a blackhole, not a reset): real processes in a
network namespace, nftables dropping the direct conns' packets both ways
(``tests/faststart_silent_driver.py``; docs/PROTOCOL.md section 16.10).

What a user saw: nothing, for TCP's own timeout (about 15 minutes; an idle side never).
Before the relay was retired the stream sat on the dead direct path while the relay
could have carried it; after, both ``rdv dial`` and ``rdv accept`` (and ``rdv send`` /
``rdv receive``) hung. Now a path left unanswered while the relay lives is given up after
a few seconds (back on the relay, nothing lost); the last path after 15 s (here
``RDV_DIRECT_SILENCE``'s 4 s), and both sides exit non-zero naming the silence. The
bounds asserted are generous (a loaded machine): what matters is that it ends, how, and
long before TCP would.
"""

from __future__ import annotations

from typing import Any

from rdv_core.client._silence import PROOF_FLOOR, SILENCE, SILENCE_ENV, silence_limit
from rdv_core.lab._faststart import judge

from tests.faststart_silent_driver import SILENCE_S
from tests.test_faststart_fallback import run_driver

DRIVER = "faststart_silent_driver.py"


def _said(report: dict[str, Any], side: str) -> list[str]:
    verb = f"rdv {side}: "
    stderr: str = report["stderr"][side]
    return [line[len(verb) :] for line in stderr.splitlines() if line.startswith(verb)]


def test_a_silent_direct_path_before_the_proof_goes_back_on_the_relay() -> None:
    report = run_driver("unproven", DRIVER)
    silent = (
        "back on the relay: the direct path died before it was proven: "
        f"it went silent for {PROOF_FLOOR:.0f} s"
    )
    # The side whose watch fires first goes back; the other may read its RESUME on the
    # relay before its own watch fires, and follows (16.6): either way, back on the relay.
    followed = (
        "back on the relay: the direct path died before it was proven: "
        "the peer went back to the relay"
    )
    backs = []
    for side in ("dial", "accept"):
        said = _said(report, side)
        assert len(said) == 3, said
        assert said[0].startswith("switched to p2p"), said
        assert said[1] in (silent, followed), said
        assert said[2].startswith("switched to p2p"), said
        backs.append(said[1])
    assert silent in backs, backs
    # The lab's judge times the switch that stuck (a later attempt's), not the one that fell back.
    events = report["events"]
    upgraded = [e for e in events["dial"] if e["type"] == "Upgraded"]
    assert len(upgraded) >= 2 and upgraded[0]["attempt"] == 1, upgraded
    run = judge(events["dial"], events["accept"])
    assert run.outcome == "direct"
    assert run.to_direct_ms == upgraded[-1]["after_s"] * 1000
    assert report["noticed_s"] < 60, report["noticed_s"]
    assert report["codes"] == {"accept": 0, "dial": 0}, report["stderr"]
    assert report["stdout"] == {
        "accept": "one from dial\ntwo from dial\n",
        "dial": "one from accept\ntwo from accept\n",
    }, report["stderr"]


def test_a_silent_direct_path_after_the_relay_retired_ends_the_session_saying_so() -> None:
    report = run_driver("retired", DRIVER)
    said = (
        f"connection lost: the direct path went silent for {SILENCE_S} s (no answer from the peer)"
    )
    # The dialer had a line in flight (never acknowledged); the accepter nothing to send
    # (keepalive probes, unanswered): both notice, both exit 1.
    for side in ("dial", "accept"):
        assert _said(report, side)[-1] == said, report["stderr"][side]
        assert report["ended_s"][side] < 100, report["ended_s"]
    assert report["codes"] == {"accept": 1, "dial": 1}, report["stderr"]
    assert report["stdout"] == {"accept": "one from dial\n", "dial": "one from accept\n"}


def test_rdv_send_and_receive_name_the_silence_and_resume() -> None:
    """``rdv send`` / ``rdv receive`` blackholed mid-transfer, direct for good: both end
    naming the silence, exit 1, keep the partial file; run again, the transfer resumes."""
    report = run_driver("transfer", DRIVER)
    cut, again = report["cut"], report["again"]
    said = f"the direct path went silent for {SILENCE_S} s (no answer from the peer)"
    assert cut["codes"] == {"send": 1, "receive": 1}, cut["stderr"]
    assert cut["ended_s"] < 100, cut["ended_s"]
    for side in ("send", "receive"):
        last = cut["stderr"][side].strip().splitlines()[-1]
        assert last.startswith(f"rdv {side}: "), last
        assert f"session ended: connection lost: {said}" in last, last
        assert "again to resume" in last, last
    assert again["codes"] == {"send": 0, "receive": 0}, again["stderr"]
    assert "resuming big.bin after" in again["stderr"]["receive"], again["stderr"]
    assert report["same"] is True


def test_the_silence_limit_is_15_s_unless_the_environment_sets_a_positive_number(
    monkeypatch: Any,
) -> None:
    monkeypatch.delenv(SILENCE_ENV, raising=False)
    assert silence_limit() == SILENCE == 15.0
    for given, limit in (("4", 4.0), ("60.5", 60.5), ("0", 15.0), ("-3", 15.0)):
        monkeypatch.setenv(SILENCE_ENV, given)
        assert silence_limit() == limit, given
    for junk in ("", "abc", "inf", "nan"):
        monkeypatch.setenv(SILENCE_ENV, junk)
        assert silence_limit() == SILENCE, junk
