"""``rdv serve``'s quick uses as a new user meets them: real processes on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RDV = [sys.executable, "-m", "rdv_tui"]


@pytest.mark.parametrize("where", ["missing-folder/events.jsonl", "."])
def test_an_events_file_it_cannot_write_is_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    """``rdv serve --events FILE`` with a FILE in a folder that does not exist (or a folder)
    ended in a FileNotFoundError / IsADirectoryError traceback; ``rdv dial --events``
    already says ``cannot write events to ...`` and exits 2 (bad usage)."""
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
        f"rdv serve: cannot write events to {target}: "
        + ("No such file or directory" if where != "." else "Is a directory")
    ], result.stderr
