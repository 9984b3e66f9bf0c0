"""A command whose reader goes away (``rdv lab list | head -1``) ends quietly.

Python ignores SIGPIPE, so a write to a closed pipe raises ``BrokenPipeError``: before,
every headless command ended with a traceback there (and the interpreter's own
"Exception ignored" complaint when the flush at exit failed too).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rdv_tui.cli import EXIT_STDOUT_GONE


def _run_into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        return subprocess.run(
            [sys.executable, "-m", "rdv_tui", *args],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ("lab", "list"),
        # The doctor's report of a server nobody runs: it prints one, then exits 1.
        ("doctor", "http://127.0.0.1:1", "--format", "json"),
    ],
)
def test_a_closed_stdout_ends_the_command_without_a_traceback(args: tuple[str, ...]) -> None:
    done = _run_into_a_closed_pipe(*args)
    assert done.stderr == b"", done.stderr.decode()
    assert done.returncode == EXIT_STDOUT_GONE


def test_a_full_stdout_is_one_line_not_a_traceback() -> None:
    # `rdv lab list > /dev/full`: before, a traceback ending in "OSError: [Errno 28]".
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "rdv_tui", "lab", "list"],
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    said = done.stderr.decode()
    assert said == "rdv lab: a write failed: No space left on device\n", said
    assert done.returncode == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # `rdv lab list >&-`: Python leaves sys.stdout None, and the list ended on
        # "AttributeError: 'NoneType' object has no attribute 'write'" (a traceback).
        (("lab", "list"), "rdv lab: stdout is closed: nowhere to print its results"),
        (("lab", "matrix", "--json"), "rdv lab: stdout is closed: nowhere to print its results"),
        # The doctor measured, then printed its report to None: nothing, exit 0 or 1.
        (
            ("doctor", "http://127.0.0.1:1", "--format", "json"),
            "rdv doctor: stdout is closed: nowhere to print the report",
        ),
        # The server ran and dropped every event it was asked to write, without a word.
        (
            ("serve", "--listen", "127.0.0.1:0", "--events", "-"),
            "rdv serve: stdout is closed: nowhere to print --events -",
        ),
    ],
)
def test_a_closed_stdout_is_said_by_a_command_that_prints_there(
    args: tuple[str, ...], said: str
) -> None:
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "rdv_tui", *args],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
    )
    assert done.stderr.decode() == f"{said} (> /dev/null for none)\n"
    assert done.returncode == 2
