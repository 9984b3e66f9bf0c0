"""Conns other than fast start's direct paths that go silent (a blackhole, not a reset):
classic direct conns, classic relay conns, fast start's relay path
(``tests/silent_conns_driver.py``: real processes in a network namespace, nftables dropping
packets; docs/PROTOCOL.md section 16.11).

What a user saw: nothing, for TCP's own timeout (about 15 minutes of retransmissions; a side
with nothing to send, never): ``rdv send`` / ``rdv receive --no-fast-start`` and ``rdv
dial`` / ``rdv accept`` sat there. Now both sides end after the silence limit (here
``RDV_DIRECT_SILENCE``'s 4 s; an idle side's two keepalive probes, a third of the limit
apart, come within it), exit 1, naming the silence; ``rdv send`` / ``rdv receive`` run again
resume. A live conn whose reader merely paused (longer than the limit) is never given up.
The bounds asserted are generous (a loaded machine): what matters is that it ends, how, and
long before TCP would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rdv_core.client._silence import SILENCE_ENV
from rdv_core.server._relay_silence import RELAY_SILENCE_ENV

from tests.faststart_fallback_driver import start_server
from tests.silent_conns_driver import SILENCE_S
from tests.test_faststart_fallback import run_driver
from tests.test_readme_examples import REPO

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


def test_a_silent_peer_on_the_relay_ends_its_partners_pipe_too() -> None:
    """The accepter's conn to the server blackholed while the dialer, whose own path is
    fine, keeps sending: the server kept taking its bytes and retransmitting them to the
    dead accepter for TCP's 15 minutes (the dialer still waited after 60 s). The server's
    watch (``RDV_RELAY_SILENCE``, docs/PROTOCOL.md 16.12) ends the pair with a reset."""
    report = run_driver("relay-partner", DRIVER)
    assert report["relay"] == {"accept": True, "dial": True}, report
    assert report["ended_s"]["dial"] < 100, report["ended_s"]
    assert report["codes"]["dial"] == 1, report["stderr"]
    assert "the relay ended the conn" in _last(report, "dial"), report["stderr"]


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


#: The limit the live-conn test runs with, and how long its reader pauses: three limits.
LIVE_SILENCE_S = 2
PAUSE_S = 3 * LIVE_SILENCE_S


@pytest.mark.parametrize("spaces", ["loopback", "none"])
def test_a_live_conn_whose_reader_pauses_past_the_limit_is_kept(
    spaces: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rdv accept`` piped into a reader that pauses for three silence limits, while
    ``rdv dial`` sends more than the buffers hold: the windows close, the kernels answer
    every zero-window probe, and nothing is given up (direct, and on the relay).

    Direct, the accepter's stdin is empty: its side ends first and the dialer keeps
    sending into the closed window (it used to take that for a quiet stdin after 2 s and
    end its side: both exited 0, 8 of 48 MiB copied). A classic relay cannot half-close
    (docs/PROTOCOL.md section 8): there the accepter's stdin stays open, as advised. The
    server's relay watch runs with the same short limit (16.12): it keeps the pair too."""
    monkeypatch.setenv(RELAY_SILENCE_ENV, str(LIVE_SILENCE_S))  # for the server started here
    data = os.urandom(48 * 1024 * 1024)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    env = {**os.environ, SILENCE_ENV: str(LIVE_SILENCE_S)}
    rdv = [sys.executable, "-m", "rdv_tui"]
    procs: list[subprocess.Popen[Any]] = []
    try:
        url, _port = start_server(procs)
        token = f"silence-live-{spaces}"
        accept = subprocess.Popen(
            [*rdv, "accept", url, token],
            stdin=subprocess.DEVNULL if spaces == "loopback" else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        procs.append(accept)
        with src.open("rb") as stdin:
            dial = subprocess.Popen(
                [*rdv, "dial", "--spaces", spaces, url, token],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                cwd=REPO,
            )
        procs.append(dial)
        assert accept.stdout is not None
        first = accept.stdout.read(1)  # the conn is up and bytes flow: now pause
        time.sleep(PAUSE_S)
        assert dial.poll() is None and accept.poll() is None, "a paused conn was given up"
        rest = accept.stdout.read()
        assert accept.wait(60) == 0, accept.stderr.read() if accept.stderr else ""
        assert dial.wait(60) == 0, dial.stderr.read() if dial.stderr else ""
        got = first + rest
        assert len(got) == len(data), (len(got), len(data))
        assert got == data
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
