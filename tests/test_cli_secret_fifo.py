"""``--code-file FIFO`` / ``--token-file FIFO`` before the writer came: real processes.

The open of a FIFO waits for its writer: ``rdv send``/``rdv receive`` sat there silent and,
the wait being inside the event loop, SIGINT, SIGTERM and SIGHUP were each noted and the
open retried (PEP 475): only SIGKILL ended them. Now each command says what it waits for
on stderr, ends on those signals with 128 + the signal, and reads the code once a writer
comes (``mkfifo code; rdv receive --code-file code & pass show rdv > code``).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme_examples import REPO

NOTICE = "waiting for a program to write the {what} into the FIFO {path} (Ctrl-C to stop)"
COMMANDS = {
    "send": ("send", "--server", "http://127.0.0.1:9", "--code-file", "code", "note.txt"),
    "receive": (
        "receive",
        "--server",
        "http://127.0.0.1:9",
        "--dir",
        "dl",
        "-y",
        "--code-file",
        "code",
    ),
    "dial": ("dial", "--token-file", "code", "http://127.0.0.1:9"),
}


def _start(args: tuple[str, ...], cwd: Path) -> subprocess.Popen[str]:
    os.mkfifo(cwd / "code")
    (cwd / "note.txt").write_text("hello\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    return subprocess.Popen(
        [sys.executable, "-m", "rdv_tui", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _first_line(process: subprocess.Popen[str]) -> str:
    """The first stderr line, or "" when none comes within a minute (the code before
    the fix printed nothing: a bare readline would have hung the test)."""
    assert process.stderr is not None
    if not select.select([process.stderr], [], [], 60)[0]:
        return ""
    return process.stderr.readline().strip()


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_the_wait_for_a_writer_is_said_and_ends_on_a_signal(
    tmp_path: Path, command: str, signum: signal.Signals
) -> None:
    process = _start(COMMANDS[command], tmp_path)
    try:
        what = "token" if command == "dial" else "code"
        line = _first_line(process)
        assert line == f"rdv {command}: " + NOTICE.format(what=what, path="code")
        process.send_signal(signum)
        code = process.wait(60)  # before the fix: never (only SIGKILL ended send/receive)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
    assert code in (128 + signum, -signum), code


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_code_written_later_is_read(tmp_path: Path, command: str) -> None:
    process = _start(COMMANDS[command], tmp_path)
    try:
        _first_line(process)
        with open(tmp_path / "code", "w", encoding="utf-8") as fifo:
            fifo.write("4801-fox-opal\n" if command != "dial" else "tok\n")
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Port 9 of loopback: nobody listens; the command got past its code and tried it.
    assert process.returncode == 1, err
    assert err.splitlines()[-1] == (
        f"rdv {command}: cannot connect to the rdv server http://127.0.0.1:9: Connection "
        "refused (nothing listens there: is an rdv server running on that port?)"
    )
