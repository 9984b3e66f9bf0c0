"""The end-of-send summary times the transfer, not what came before it.

``rdv send`` builds its view before the lobby wait (the receiver may take minutes to run
``rdv receive``) and the receiver's question: a summary timed from there reported a
4.8 MiB send that took 0.05 s as "in 0.5 s (10.0 MiB/s)".
"""

from __future__ import annotations

import argparse
import io
import re
import time

from rich.console import Console

from rdv_core.events import Candidate, FileAccepted, FileCompleted, FileOffered, Upgraded
from rdv_tui.transfer_ui import EventSink, TransferView

MIB = 1024 * 1024


def test_the_summary_counts_from_the_first_accepted_file() -> None:
    view = TransferView(Console(file=io.StringIO()), "out")
    view.expect(1, 8 * MIB)
    time.sleep(0.4)  # the receiver is not there yet, then reads the offer
    view(FileOffered(0.0, 1, "out", "big.bin", 8 * MIB))
    time.sleep(0.2)  # still deciding: the offer is on screen, nothing moves
    view(FileAccepted(0.0, 1, "out", 0))
    view(FileCompleted(0.0, 1, "out", "big.bin", 8 * MIB, "ab" * 32))
    summary = view.summary()
    timed = re.fullmatch(r"1 of 1 file\(s\) verified, 8\.0 MiB in ([\d.]+) s \(.+/s\)", summary)
    assert timed is not None, summary
    assert float(timed.group(1)) < 0.3, summary  # without the 0.6 s before the first file


def test_a_summary_before_anything_was_accepted_says_nothing_moved() -> None:
    view = TransferView(Console(file=io.StringIO()), "in")
    view.expect(2, MIB)
    time.sleep(0.2)
    assert view.summary() == "0 of 2 file(s) verified, 0 B in 0.0 s (0 B/s)"


def test_the_switch_line_keeps_a_bracketed_ipv6_address() -> None:
    """Rich read ``[fd00::5]`` as a style tag and printed ``switched to p2p: :52000``."""
    out = io.StringIO()
    console = Console(file=out, width=120)
    sink = EventSink(argparse.Namespace(verbose=False), console, TransferView(console, "out"), None)
    candidate = Candidate(3, "[fd00::5]:52000", "private6", "self")
    sink(Upgraded(0.5, candidate, "[fd00::5]:52000", 0.084, 1))
    assert "switched to p2p: [fd00::5]:52000 after 84 ms" in out.getvalue()
