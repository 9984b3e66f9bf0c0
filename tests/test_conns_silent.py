"""Conns other than fast start's direct paths that go silent (a blackhole, not a reset):
classic direct conns, classic relay conns, fast start's relay path
(``tests/silent_conns_driver.py``: real processes in a network namespace, nftables
dropping packets; docs/PROTOCOL.md section 16.11).

What a user saw: nothing, for TCP's own timeout (about 15 minutes of retransmissions; a
side with nothing to send, never): ``rdv send`` / ``rdv receive --no-fast-start`` and
``rdv dial`` / ``rdv accept`` sat there. Now both sides end after the silence limit (here
``RDV_DIRECT_SILENCE``'s 4 s; an idle side needs two keepalive probes, ~10 s), exit 1,
naming the silence; ``rdv send`` / ``rdv receive`` run again resume. The bounds asserted are
generous (a loaded machine): what matters is that it ends, how, and long before TCP would.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.silent_conns_driver import SILENCE_S
from tests.test_faststart_fallback import run_driver

DRIVER = "silent_conns_driver.py"
DIRECT = f"the direct path went silent for {SILENCE_S} s (no answer from the peer)"
TO_SERVER = (
    f"the path to the relay server went silent for {SILENCE_S} s (no answer from the server)"
)


def _last(report: dict[str, Any], side: str) -> str:
    stderr: str = report["stderr"][side]
    return stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("mode", ["direct", "idle"])
def test_a_silent_classic_direct_conn_ends_both_pipes_saying_so(mode: str) -> None:
    """``direct``: the dialer's line in flight, the accepter idle; ``idle``: both idle."""
    report = run_driver(mode, DRIVER)
    assert report["relay"] == {"accept": False, "dial": False}, report
    for side in ("dial", "accept"):
        assert _last(report, side) == f"rdv {side}: connection lost: {DIRECT}", report["stderr"]
        assert report["ended_s"][side] < 100, report["ended_s"]
    assert report["codes"] == {"accept": 1, "dial": 1}, report["stderr"]


@pytest.mark.parametrize("mode", ["relay", "relay-fast"])
def test_a_silent_path_to_the_relay_server_ends_that_pipe_saying_so(mode: str) -> None:
    """The dialer's conn to the server blackholed, the dialer idle (``relay-fast``: fast
    start's relay path, no direct path to go on with)."""
    report = run_driver(mode, DRIVER)
    assert report["relay"] == {"accept": True, "dial": True}, report
    assert _last(report, "dial") == f"rdv dial: connection lost: {TO_SERVER}", report["stderr"]
    assert report["ended_s"]["dial"] < 100, report["ended_s"]
    assert report["codes"]["dial"] == 1, report["stderr"]


def test_classic_rdv_send_and_receive_name_the_silence_and_resume() -> None:
    report = run_driver("transfer", DRIVER)
    cut, again = report["cut"], report["again"]
    assert cut["relay"] == {"send": False, "receive": False}, cut
    assert cut["codes"] == {"send": 1, "receive": 1}, cut["stderr"]
    for side in ("send", "receive"):
        last = _last(cut, side)
        assert last.startswith(f"rdv {side}: "), last
        assert f"session ended: connection lost: {DIRECT}" in last, last
        assert "again to resume" in last, last
        assert cut["ended_s"][side] < 100, cut["ended_s"]
    assert again["codes"] == {"send": 0, "receive": 0}, again["stderr"]
    assert "resuming big.bin after" in again["stderr"]["receive"], again["stderr"]
    assert report["same"] is True
