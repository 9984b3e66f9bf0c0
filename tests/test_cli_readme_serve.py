"""``rdv serve``'s quick uses as a new user meets them: real processes on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

RDV = [sys.executable, "-m", "rdv_tui"]


@pytest.mark.parametrize("where", ["missing-folder/events.jsonl", "."])
def test_an_events_file_it_cannot_write_is_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    """``rdv serve --events FILE`` with a FILE in a folder that does not exist (or a folder)
    ended in a FileNotFoundError / IsADirectoryError traceback; ``rdv dial --events``
    now says ``cannot open --events ...`` and exits 2 (bad usage)."""
    target = tmp_path / where
    result = subprocess.run(
        [*RDV, "serve", "--listen", "127.0.0.1:0", "--events", str(target)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"rdv serve: cannot open --events {target}: "
        + ("No such file or directory" if where != "." else "Is a directory")
    ], result.stderr


def test_an_events_file_that_fails_later_leaves_the_pair_log_alone() -> None:
    """``rdv serve --events FILE`` whose disk fills up (here ``/dev/full``), or
    ``--events - | head``: every event's write raised, which the server logged as an
    ERROR with a traceback per event, and it skipped the rest of the event's handling,
    so the operator's pair lines (``pair 1 token=...``) were lost too. Now one warning
    says the events stopped, and the pair lines go on."""
    server = subprocess.Popen(
        [*RDV, "serve", "--listen", "127.0.0.1:0", "--events", "/dev/full"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    try:
        first = server.stderr.readline()
        assert first.startswith("rdv serve: listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        # The two pairs run at once, and accept's stdin is empty: its side ends at once,
        # where the dial used to wait 5 s for it (the test took 6.5 s, now 2).
        peers = {
            (token, method): subprocess.Popen(
                [*RDV, method, "--timeout", "20", url, token],
                stdin=subprocess.PIPE if method == "dial" else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            for token in ("full-1", "full-2")
            for method in ("accept", "dial")
        }
        for token in ("full-1", "full-2"):
            dial, accept = peers[token, "dial"], peers[token, "accept"]
            dialed, _ = dial.communicate(b"hello\n", timeout=30)
            out, _ = accept.communicate(timeout=30)
            assert (dial.returncode, accept.returncode, dialed, out) == (0, 0, b"", b"hello\n")
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Traceback" not in err, err
    assert "token=full-1" in err and "token=full-2" in err, err  # the pair lines
    warnings = [line for line in err.splitlines() if "events" in line and "full-" not in line]
    assert len(warnings) == 1, err
    assert "No space left on device" in warnings[0], err


def test_max_lobby_0_is_what_the_help_says() -> None:
    """``--help`` said "0: no cap" for ``--max-lobby`` too; the server then keeps the lobby
    within 3/4 of its open-file limit, as the README says ("0: only that bound")."""
    import re

    server = subprocess.Popen(
        [*RDV, "serve", "--listen", "127.0.0.1:0", "--max-lobby", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    try:
        server.stderr.readline()  # listening on ...
        caps = server.stderr.readline()
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    found = re.search(r"caps: (\d+) in all, .*\(open-file limit (\d+)\)", caps)
    assert found is not None, caps
    assert int(found.group(1)) == int(found.group(2)) * 3 // 4, caps
    help_text = subprocess.run(
        [*RDV, "serve", "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    entry = " ".join(
        help_text.split("--max-lobby N", 2)[2].split("--max-lobby-per-address")[0].split()
    )
    assert "0: no cap" not in entry and "open-file" in entry, entry
