"""The last progress bar of a send whose one file failed, as real processes against a
real server on loopback, into a pipe and on a real terminal (a pty).

The failed file was counted as done and its bytes were not: the bar left on screen read
``1/1 files 0.0/3.0 GiB`` above ``0 of 1 file verified ...; 1 failed``. The count is
now of verified files, the failed ones apart (``0/1 files, 1 failed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path

from tests.test_session_cli import rdv
from tests.tui.test_cli_user import Terminal, no_user_config  # noqa: F401 (fixture)

SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _a_file_that_fails(tmp_path: Path) -> tuple[Path, Path]:
    """A file the receiver already holds with other bytes of the same size and mtime:
    it resumes, the digest differs, the file fails."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "other.txt").write_bytes(b"new\n")
    dl = tmp_path / "dl" / "src"
    dl.mkdir(parents=True)
    (dl / "other.txt").write_bytes(b"old\n")
    info = (src / "other.txt").stat()
    os.utime(dl / "other.txt", ns=(info.st_atime_ns, info.st_mtime_ns))
    return src, tmp_path / "dl"


def _bars(text: str) -> list[str]:
    frames = SGR.sub("", text.replace("\x1b[2K", "\n"))
    lines = re.split(r"[\r\n]+", frames)
    return [line for line in lines if " files" in line and "verified" not in line]


async def test_a_failed_file_is_not_counted_as_done_in_a_pipe(url: str, tmp_path: Path) -> None:
    src, dl = _a_file_that_fails(tmp_path)
    code = "4181-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(src), "--code", code, *common, env={"COLUMNS": "80"}),
        rdv("receive", code, "--dir", str(dl), "--yes", *common, env={"COLUMNS": "80"}),
    )
    assert rc_s == 1 and rc_r == 1, (err_s, err_r)
    for err in (err_s, err_r):
        assert "0 of 1 file verified" in err, err
        bars = _bars(err)
        assert bars, err
        assert "0/1 files, 1 failed" in bars[-1], bars
        assert not any("1/1 files" in bar for bar in bars), bars


async def test_a_failed_file_is_not_counted_as_done_on_a_terminal(url: str, tmp_path: Path) -> None:
    src, dl = _a_file_that_fails(tmp_path)
    code = "4182-fox-opal"
    common = ["--server", url, "--spaces", "loopback4"]
    term = Terminal(
        ["receive", code, "--dir", str(dl), "--yes", *common],
        env={"COLUMNS": "80", "LINES": "24"},
    )
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    try:
        rc_s, _, err_s = await rdv("send", str(src), "--code", code, *common)
        assert rc_s == 1, err_s
        assert await term.exit_status(60) == 1, term.text()
        term.read()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        term.close()
    bars = _bars(term.text())
    assert bars, term.text()
    assert "0/1 files, 1 failed" in bars[-1], bars
    assert not any("1/1 files" in bar for bar in bars), bars
