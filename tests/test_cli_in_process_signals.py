"""A command's ``main([...])`` called inside a longer-lived process leaves no stop signal
blocked or ignored there (rdv_tui/cli/stop_signals.py).

``note_late`` blocked SIGTERM and SIGHUP in the main thread and ``last_exit`` set them to
``SIG_IGN`` when the command returned: in a process that goes on (the suite's workers call
``rdv_tui.cli.main``), every process started afterwards inherited both across ``exec`` and
never saw a SIGTERM (one fresh-clone CI: 34 signal tests failed, their commands exiting 0).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from rdv_tui.cli import main


def _child_masks() -> tuple[int, int]:
    """SigBlk and SigIgn of a process started now."""
    out = subprocess.run(
        ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[1], 16), int(out[3], 16)


def test_a_send_that_returns_leaves_the_signals_of_this_process_alone(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hi")
    term_bit = 1 << (signal.SIGTERM - 1)
    assert main(["send", str(note), "--server", "http://127.0.0.1:9/x?y=1"]) == 2
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
    blocked, ignored = _child_masks()
    assert not blocked & term_bit and not ignored & term_bit, (hex(blocked), hex(ignored))
