"""SIGTERM on either side of ``rdv send`` / ``rdv receive`` in the middle of a file, on
a classic relay (``--no-fast-start``, no direct path) and on a direct conn, as real
processes against a real server on loopback.

Left to its default, SIGTERM (``kill``, ``timeout``, a service manager) ended the
process at once with exit -15 and no word; the peer read "session ended: the peer hung
up". Now it ends as Ctrl-C does: the peer is told ("the peer was stopped (SIGTERM)"),
the stopped side says how to go on, exits 143, and running both again resumes.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.test_transfer_probe_interrupt import _interrupted, _last, _resumed

AGAIN_S = "run rdv send again to resume (a new code is fine)"
AGAIN_R = "partial files are kept: run rdv send and rdv receive again to resume"
PATHS = {"relay": ("--spaces", "none", "--no-fast-start"), "p2p": ("--no-fast-start",)}


def _own_files_say_stopped(err: str) -> None:
    """The stopped side's own file line names its stop: it read "failed big.bin: session
    ended: closed" (the peer's hang-up on our Close ended the session as "closed")."""
    failed = [line for line in err.splitlines() if line.startswith("failed big.bin")]
    assert all("session ended: stopped (SIGTERM)" in line for line in failed), err
    assert "session ended: closed" not in err, err


@pytest.mark.parametrize("path", ["relay", "p2p"])
async def test_sigterm_on_the_sender(url: str, tmp_path: Path, path: str) -> None:
    err_s, err_r, dl = await _interrupted(
        url, tmp_path, "4191-fox-opal", "send", signal.SIGTERM, PATHS[path]
    )
    assert _last(err_s) == f"rdv send: stopped (SIGTERM); {AGAIN_S}", err_s
    _own_files_say_stopped(err_s)
    assert "session ended: the peer was stopped (SIGTERM)" in err_r, err_r
    assert _last(err_r).startswith("rdv receive: 1 failed (big.bin); " + AGAIN_R), err_r
    await _resumed(url, tmp_path, dl, "4192-fox-opal")


@pytest.mark.parametrize("path", ["relay", "p2p"])
async def test_sigterm_on_the_receiver(url: str, tmp_path: Path, path: str) -> None:
    err_s, err_r, dl = await _interrupted(
        url, tmp_path, "4193-fox-opal", "receive", signal.SIGTERM, PATHS[path]
    )
    assert _last(err_r).startswith(f"rdv receive: stopped (SIGTERM); {AGAIN_R}"), err_r
    _own_files_say_stopped(err_r)
    # The sender's last line gives the receiver's reason, not the "the peer hung up" of
    # its next write on the conn the session had closed after reading that reason.
    assert _last(err_s) == (
        f"rdv send: session ended: the peer was stopped (SIGTERM); {AGAIN_S}"
    ) or _last(err_s).startswith(
        "rdv send: 1 file failed; the first: big.bin (session "
        "ended: the peer was stopped (SIGTERM))"
    ), err_s
    await _resumed(url, tmp_path, dl, "4194-fox-opal")
