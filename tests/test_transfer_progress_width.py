"""The progress line of ``rdv receive`` on a real terminal (a pty) of 40 to 300 columns,
with a real ``rdv send`` and a real server on loopback.

Rich laid the bar's columns out as a table squeezed to the width: at 60 columns the
rate folded into two lines (``458.9`` over ``MiB/s``, the bar redrawn as two lines), at
40 every field was cut (``big.bin ━╸━━ 0/1 files 1.4/… 350… 0:00:…`` over ``GiB MiB…``).
Now the fields that fit are whole, on one line, and the name and the bar take the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.test_session_cli import rdv
from tests.tui.test_cli_user import Terminal, no_user_config  # noqa: F401 (fixture)

GIB = 1024 * 1024 * 1024  # a hole: read fast, yet a second or more of frames
#: Sizes and what their bars end with. A GiB took 4 to 10 s a run (the receiver writes
#: and both sides hash all of it), 256 MiB takes 2 s and still draws frames for about
#: half a second, with a done field (``256.0/256.0 MiB``) wider than a GiB's. On the old
#: bar (rich's table) 40 and 60 columns fail as they did with a GiB each (a bar redrawn
#: over two lines), 80 and 300 passed on it then too.
SIZES = {GIB: "1.0/1.0 GiB", 256 * 1024 * 1024: "256.0/256.0 MiB"}
SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DONE = re.compile(r"\d+(\.\d)?/\d+(\.\d)? (B|KiB|MiB|GiB)( |$)")  # "1.4/2.0 GiB", whole


@pytest.mark.parametrize(
    ("columns", "size"),
    [(40, GIB), (60, 256 << 20), (80, 256 << 20), (300, 256 << 20)],
    ids=["40-GiB", "60-MiB", "80-MiB", "300-MiB"],
)
async def test_the_progress_line_fits_whole(
    url: str, tmp_path: Path, columns: int, size: int
) -> None:
    """GiB figures at 40 columns (where the old bar cut every field), MiB at the others."""
    src = tmp_path / "big.bin"
    fd = os.open(src, os.O_CREAT | os.O_WRONLY, 0o644)
    os.ftruncate(fd, size)
    os.close(fd)
    code = f"{4400 + columns}-fox-opal"
    common = ["--server", url, "--no-fast-start"]
    term = Terminal(
        ["receive", code, "--dir", str(tmp_path / "dl"), "--yes", *common],
        env={"COLUMNS": str(columns), "LINES": "24"},
    )
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    try:
        rc_s, _, err_s = await rdv("send", str(src), "--code", code, *common)
        assert rc_s == 0, err_s
        assert await term.exit_status(60) == 0, term.text()
        term.read()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        term.close()
    raw = term.text()
    # A bar of two lines is redrawn by moving the cursor up over the first one.
    assert "\x1b[1A" not in raw, raw
    frames = [SGR.sub("", part).split("\r")[0] for part in raw.split("\x1b[2K")]
    unit = SIZES[size][-3:]
    bars = [frame for frame in frames if unit in frame and "━" in frame]
    assert bars, raw
    for bar in bars:
        assert cell_len(bar) <= columns, (columns, bar)
        assert "…" not in bar and DONE.search(bar), (columns, bar)
    assert any(SIZES[size] in bar for bar in bars), bars
    assert (tmp_path / "dl" / "big.bin").stat().st_size == size


@pytest.mark.parametrize("columns", [40, 80, 120])
def test_many_files_keep_their_count_and_the_end_of_the_name(columns: int) -> None:
    """A send of many files: the count goes last (the rate first); a long name keeps its end."""
    import io

    from rich.console import Console

    from rdv_tui.transfer_bar import FittedProgress

    out = io.StringIO()
    console = Console(file=out, width=columns)
    progress = FittedProgress(console)
    name = "photos/2026/holiday-in-the-mountains/写真-26-summit.raw"
    progress.add_task(name, total=3 * 2**30, completed=2**30, files="14/30 files", many=True)
    console.print(progress.make_tasks_table(progress.tasks))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and cell_len(lines[0]) <= columns, lines
    assert "14/30 files 1.0/3.0 GiB" in lines[0], lines
    if columns >= 80:
        assert "写真-26-summit.raw ━" in lines[0], lines
