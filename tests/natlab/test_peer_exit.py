"""A run whose peer exits non-zero is failed, whatever its events and data say.

What a user saw: both lab runners judged a run by the dialer's events and the payload's
digest only, never the peers' exits. A fast-start run whose direct path went silent after
the relay retired (docs/PROTOCOL.md 16.10: both peers exit 1, ``connection lost: the
direct path went silent``) was counted ``direct`` (``tests/test_lab_faststart_verdict.py``
judges such a run, recorded); the classic runner too would count a run whose peer said it
failed. Now each runner reads the exit codes, fails the run and says who exited with what
and its last line.

Here the real rdv peers race in a real lab and carry the payload whole; the lab's command
is a shell around the real ``python -m rdv_tui`` that makes the accepter exit 9 after it
(a peer's failure cannot be had on demand otherwise without a blackhole's 4-15 s). One lab
build, one run of each runner. Each run also checks what a cone-fw run of
``test_presets.py`` and of ``test_faststart.py`` checks (they do one cone-fw run fewer for
it: CI's time is at its bar).
"""

from __future__ import annotations

from rdv_core.lab import FastStartRunner, Lab, LabRunner, get_preset

#: The accepter's last stderr line, as the wrapper writes it.
SAID = "rdv accept: told to fail by the test"


def _wrapped(rdv_command: list[str]) -> list[str]:
    script = (
        f'"$@"; code=$?; case " $* " in *" accept "*) echo "{SAID}" >&2; exit 9;; esac; exit $code'
    )
    return ["sh", "-c", script, "sh", *rdv_command]


def test_both_runners_fail_a_run_whose_accepter_exited_9(rdv_command: list[str]) -> None:
    with Lab(get_preset("cone-fw"), rdv_command=_wrapped(rdv_command)) as lab:
        lab.start_server()
        classic = LabRunner(lab, payload_size=4096).run_once()
        fast = FastStartRunner(lab, payload_size=4096).run_once()
    assert classic.data_ok and classic.outcome == "failed", classic.error
    assert classic.error == f"picked direct, then the accepter exited 9: {SAID}"
    assert classic.to_json()["error"] == classic.error  # `rdv lab run --json` says why too
    # The race itself went as a cone-fw race goes (test_presets.py's checks).
    assert classic.received_bytes == classic.payload_bytes == 4096
    assert classic.chosen_space == "public4" and classic.chosen_family == 4
    server = [e["type"] for e in classic.events["server"]]
    assert "PairMatched" in server and "P2PReported" in server, server
    assert any(e["type"] == "Picked" for e in classic.events["accepter"])
    assert fast.data_ok and fast.outcome == "failed", fast.to_json()
    assert fast.error == f"the stream was on the direct path, then the accepter exited 9: {SAID}"
    # ... and the fast start as it goes there (test_faststart.py's checks).
    assert fast.first_byte_ms is not None and fast.to_direct_ms is not None, fast.to_json()
    assert fast.attempts >= 1
