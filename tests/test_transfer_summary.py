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

from rdv_core.events import (
    Candidate,
    FileAccepted,
    FileCompleted,
    FileFailed,
    FileOffered,
    FileProgress,
    FileRejected,
    Upgraded,
)
from rdv_core.session import DECLINED
from rdv_tui.transfer_ui import EventSink, TransferView

MIB = 1024 * 1024
URL = "http://rdv.example.com:8080"  # not this machine: the sink's warnings are all shown


def test_the_summary_counts_from_the_first_accepted_file() -> None:
    view = TransferView(Console(file=io.StringIO()), "out")
    view.expect(1, 8 * MIB)
    time.sleep(0.4)  # the receiver is not there yet, then reads the offer
    view(FileOffered(0.0, 1, "out", "big.bin", 8 * MIB))
    time.sleep(0.2)  # still deciding: the offer is on screen, nothing moves
    view(FileAccepted(0.0, 1, "out", 0))
    view(FileCompleted(0.0, 1, "out", "big.bin", 8 * MIB, "ab" * 32))
    summary = view.summary()
    timed = re.fullmatch(r"1 of 1 file verified, 8\.0 MiB in ([\d.]+) ms \(.+/s\)", summary)
    assert timed is not None, summary
    assert float(timed.group(1)) < 300, summary  # without the 0.6 s before the first file


def test_a_summary_before_anything_was_accepted_says_nothing_moved() -> None:
    view = TransferView(Console(file=io.StringIO()), "in")
    view.expect(2, MIB)
    time.sleep(0.2)
    assert view.summary() == "0 of 2 files verified"  # no time or rate: nothing started


def test_the_switch_line_keeps_a_bracketed_ipv6_address() -> None:
    """Rich read ``[fd00::5]`` as a style tag and printed ``switched to p2p: :52000``."""
    out = io.StringIO()
    console = Console(file=out, width=120)
    sink = EventSink(
        argparse.Namespace(verbose=False), console, TransferView(console, "out"), None, URL
    )
    candidate = Candidate(3, "[fd00::5]:52000", "private6", "self")
    sink(Upgraded(0.5, candidate, "[fd00::5]:52000", 0.084, 1))
    assert "switched to p2p: [fd00::5]:52000 after 84 ms" in out.getvalue()


def test_the_mean_rate_counts_what_a_failed_file_moved() -> None:
    """A file cut short after 64 MiB (the peer went away) read "0 B in 2.1 s (0 B/s)":
    the bytes are 0 verified, but the rate is what moved, and 64 MiB did (and the line
    says that those 64 MiB moved)."""
    view = TransferView(Console(file=io.StringIO()), "in")
    view(FileOffered(0.0, 1, "in", "big.bin", 256 * MIB))
    view(FileAccepted(0.0, 1, "in", 0))
    time.sleep(0.1)
    view(FileProgress(0.0, 1, "in", 64 * MIB, 256 * MIB, 640.0 * MIB))
    view(FileFailed(0.0, 1, "in", "big.bin", "session ended: closed by peer"))
    summary = view.summary()
    # ... and says so: "0 B in 0.1 s (640 MiB/s)" read as a contradiction.
    assert summary.startswith("0 of 1 file verified, 0 B (64.0 MiB moved) in "), summary
    assert "(0 B/s)" not in summary and "MiB/s)" in summary, summary
    assert summary.endswith("; 1 failed"), summary


def test_a_resumed_file_that_fails_again_counts_only_what_moved_now() -> None:
    view = TransferView(Console(file=io.StringIO()), "in")
    view(FileOffered(0.0, 1, "in", "big.bin", 256 * MIB))
    view(FileAccepted(0.0, 1, "in", 200 * MIB))  # resumed: 200 MiB were there
    view(FileProgress(0.0, 1, "in", 200 * MIB, 256 * MIB, 0.0))
    view(FileFailed(0.0, 1, "in", "big.bin", "session ended: closed by peer"))
    assert "(0 B/s)" in view.summary()  # nothing moved in this run


def test_no_switch_line_after_the_transfer_ended() -> None:
    """Fast start's switch could land while the session was being closed, after the
    command's last line ("rdv send: the receiver declined ...")."""
    out = io.StringIO()
    console = Console(file=out, width=120)
    sink = EventSink(
        argparse.Namespace(verbose=False), console, TransferView(console, "out"), None, URL
    )
    sink.ended = True
    candidate = Candidate(3, "127.0.0.1:52000", "loopback4", "self")
    sink(Upgraded(0.5, candidate, "127.0.0.1:52000", 0.084, 1))
    assert out.getvalue() == ""


def test_spans_read_in_the_unit_that_shows_them() -> None:
    """A 2.9 MiB send on loopback ended "2.9 MiB in 0.0 s (101.0 MiB/s)"."""
    from rdv_tui.cli.formatting import format_duration

    assert format_duration(0.029) == "29 ms"
    assert format_duration(0.0042) == "4.2 ms"
    assert format_duration(4.6) == "4.6 s"
    assert format_duration(187.4) == "3 min 07 s"
    assert format_duration(3725) == "1 h 02 min"


def test_files_turned_down_are_not_called_failed() -> None:
    """A declined offer read "0/2 files, 2 failed" and "0 of 2 file(s) verified, 0 B in
    0.0 ms (0 B/s); 2 failed" on both sides: nothing had failed, and nothing had moved."""
    view = TransferView(Console(file=io.StringIO()), "out")
    view.expect(2, 2 * MIB)
    view(FileOffered(0.0, 1, "out", "a.bin", MIB))
    view(FileOffered(0.0, 2, "out", "b.bin", MIB))
    view(FileRejected(0.0, 1, "out", DECLINED))
    view(FileRejected(0.0, 2, "out", DECLINED))
    assert view.summary() == "0 of 2 files verified; 2 declined"
    assert view._files_field() == "0/2 files, 2 declined"
    mixed = TransferView(Console(file=io.StringIO()), "in")
    mixed.expect(3, 3 * MIB)
    for tid, name in enumerate(("a.bin", "b.bin", "c.bin"), 1):
        mixed(FileOffered(0.0, tid, "in", name, MIB))
    mixed(FileRejected(0.0, 1, "in", "not enough free space in the download folder"))
    mixed(FileAccepted(0.0, 2, "in", 0))
    mixed(FileFailed(0.0, 2, "in", "b.bin", "session ended"))
    mixed(FileRejected(0.0, 3, "in", DECLINED))
    assert mixed._files_field() == "0/3 files, 1 failed, 1 declined, 1 refused"
    assert mixed.summary().endswith("; 1 failed, 1 declined, 1 refused"), mixed.summary()
