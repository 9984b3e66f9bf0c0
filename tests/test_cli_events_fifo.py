"""``--events FIFO`` (``mkfifo ev; rdv dial --events ev ...; jq . < ev``): real processes.

With no reader yet, every command sat in ``open()`` before its first line, silent, until
some program opened the FIFO; ``rdv send`` did not even end on Ctrl-C. Now a FIFO that
nobody reads is an error at once (exit 2, saying to start the reader first), and with a
reader the events flow as into a file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.test_readme_examples import REPO

RDV_SERVE = [sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0"]
NO_READER = "it is a FIFO that no program reads: start the reader first"


def _rdv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    # A generous bound: before the fix each of these waited for good.
    return subprocess.run(
        [sys.executable, "-m", "rdv_tui", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize(
    "command",
    [
        ("dial", "http://127.0.0.1:9", "tok"),
        ("accept", "http://127.0.0.1:9", "tok"),
        ("send", "--server", "http://127.0.0.1:9", "--code", "4801-fox-opal", "ev-note.txt"),
        ("receive", "--server", "http://127.0.0.1:9", "--dir", "dl", "4801-fox-opal"),
        ("serve", "--listen", "127.0.0.1:0"),
    ],
    ids=lambda c: c[0],
)
def test_a_fifo_nobody_reads_is_an_error_at_once(tmp_path: Path, command: tuple[str, ...]) -> None:
    os.mkfifo(tmp_path / "ev")
    (tmp_path / "ev-note.txt").write_text("hello\n")
    (tmp_path / "dl").mkdir()
    done = _rdv(command[0], "--events", "ev", *command[1:], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert NO_READER in done.stderr, done.stderr
    assert f"ev: {NO_READER}" in done.stderr.strip().splitlines()[-1], done.stderr


def test_with_a_reader_the_events_flow_through_the_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "ev"
    os.mkfifo(fifo)
    lines: list[str] = []

    def read() -> None:
        with open(fifo, encoding="utf-8") as events:  # the reader first, as with `jq . < ev &`
            lines.extend(events)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Nothing listens on port 9 of loopback: the attempt fails at once, with events.
        done = _rdv("dial", "--events", "ev", "http://127.0.0.1:9", "tok", cwd=tmp_path)
    finally:
        if reader.is_alive():  # the command never opened it: let the reader go
            with open(fifo, "w"):
                pass
        reader.join(30)
    assert done.returncode == 1, done.stderr
    types = [json.loads(line)["type"] for line in lines]
    assert types[0] == "AttemptStarted" and "AttemptFailed" in types, lines


def test_a_regular_file_is_still_truncated_and_serve_appends(tmp_path: Path) -> None:
    events = tmp_path / "ev.jsonl"
    events.write_text("old line\n" * 100)
    done = _rdv("dial", "--events", str(events), "http://127.0.0.1:9", "tok", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "old line" not in events.read_text()
    assert json.loads(events.read_text().splitlines()[0])["type"] == "AttemptStarted"
    # rdv serve appends (a log across restarts): it starts and stops on SIGTERM.
    events.write_text("kept\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    serve = subprocess.Popen(
        [*RDV_SERVE, "--events", str(events)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert serve.stderr is not None
        for line in serve.stderr:
            if "listening" in line:
                break
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert events.read_text().startswith("kept\n")
