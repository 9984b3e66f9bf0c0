"""``rdv lab matrix`` and ``rdv lab doctor`` within the terminal: real labs, a real pty
and a real pipe.

The matrix kept a floor of 60 columns: its rows stayed 63 wide in a 40-column terminal,
which folded each one to column 0. ``rdv lab doctor`` printed 116-column rows at any width,
into a pipe too (where rdv's other tables take 80). Their rows now fold at their columns,
two spaces in, under a header folded at the same places.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rdv_core.lab import MatrixRow, format_header, format_row, matrix_cells
from rdv_core.lab._doctor_table import doctor_header, doctor_row
from rdv_core.lab._probe import probe
from rdv_tui.cli.commands.lab import matrix_columns

from tests.test_lab_table_widths import WIDEST
from tests.tui.test_cli_user import Terminal

ROOT = Path(__file__).resolve().parent.parent
SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
needs_lab = pytest.mark.skipif(not probe().ok, reason="this machine cannot build labs")


@pytest.mark.parametrize("room", [40, 60])
@pytest.mark.parametrize("predict", [False, True])
def test_the_matrix_folds_its_rows_in_a_narrow_terminal(room: int, predict: bool) -> None:
    cells = matrix_cells(pattern="*")
    columns, note = matrix_columns(cells, predict=predict, room=room)
    extra = {"predicted": "possible", "agree": "NO"} if predict else {}
    rows = [MatrixRow(cell, WIDEST, 10, extra=extra) for cell in cells]
    lines = format_header(columns, note, room)
    for row in rows:
        lines += format_row(row, columns, room).splitlines()
    assert max(map(len, lines)) <= room, max(lines, key=len)
    # Every row starts with its cell's name; what folds continues two spaces in.
    names = {cell.name for cell in cells}
    starts = [line.split("  ")[0] for line in lines if not line.startswith(" ")]
    assert names <= set(starts), names - set(starts)
    assert any(line.startswith("  ") and "10" in line for line in lines), lines


@pytest.mark.parametrize("room", [40, 80, 116])
def test_the_doctor_table_fits_its_terminal(room: int) -> None:
    cells = ["dualstack-v4slow", "APD/drop/hp no", "no NAT/open/hp -", "MISMATCH"]
    cells += ["impossible relay", "3/3 direct 1234.5", "NO"]
    reason = "both NATs keep the port the server saw and drop early SYNs silently: " * 2
    lines = doctor_header(room) + doctor_row(cells, ["A: mapping is EI, built APD"], reason, room)
    assert max(map(len, lines)) <= room, max(lines, key=len)
    assert lines[0].startswith("preset ") and lines[-1].startswith("         ")
    if room >= 116:  # the wide table is as before: one line per preset
        assert len(doctor_header(room)) == 2


def _lab_env(columns: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(ROOT)
    if columns:
        env["COLUMNS"] = columns
    return env


@needs_lab
def test_lab_doctor_into_a_pipe_takes_80_columns() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rdv_tui", "lab", "doctor", "cone-fw", "--runs", "1"],
        capture_output=True,
        text=True,
        env=_lab_env(None),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("cone-fw ") for line in lines), done.stdout
    assert max(map(len, lines)) <= 80, max(lines, key=len)


@needs_lab
async def test_lab_matrix_in_a_40_column_terminal() -> None:
    term = Terminal(
        ["lab", "matrix", "--cells", "a-drop/b-drop 0/0", "--runs", "1"],
        env={"COLUMNS": "40", "LINES": "24"},
    )
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    try:
        assert await term.exit_status(300) == 0, term.text()
        term.read()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        term.close()
    lines = SGR.sub("", term.text()).replace("\r", "").splitlines()
    assert any(line.startswith("a-drop/b-drop 0/0") for line in lines), lines
    assert max(map(len, lines)) <= 40, lines


@needs_lab
async def test_lab_run_in_a_40_column_terminal() -> None:
    """A floor of 60 columns wrapped the preset's story past a 40-column edge, and a run's
    line (its path and data check beside the figures) was 71 wide at any width."""
    term = Terminal(["lab", "run", "cone-fw", "--runs", "1"], env={"COLUMNS": "40"})
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    try:
        assert await term.exit_status(300) == 0, term.text()
        term.read()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        term.close()
    lines = SGR.sub("", term.text()).replace("\r", "").splitlines()
    runs = [n for n, line in enumerate(lines) if line.startswith("run   1: direct")]
    assert runs, lines
    below = lines[runs[0] + 1 : runs[0] + 4]  # wrapped under the outcome
    assert all(line.startswith(" " * 10) for line in below[:1]), lines
    assert any("data ok" in line for line in below), lines
    assert max(map(len, lines)) <= 40, lines


def test_lab_list_in_a_40_column_terminal() -> None:
    """Its text kept a column 56 in (the names' width and the outcome), past a 40-column
    edge; a narrow terminal gets each name on its own line, the text four spaces in."""
    done = subprocess.run(
        [sys.executable, "-m", "rdv_tui", "lab", "list"],
        capture_output=True,
        text=True,
        env=_lab_env("40"),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "cone-fw  direct" in lines, lines
    assert max(map(len, lines)) <= 40, max(lines, key=len)


@pytest.mark.parametrize("room", [40, 60, 72, 80])
def test_the_run_summary_keeps_each_figure_with_its_unit(room: int) -> None:
    # At 80 columns `rdv lab run cone-rst --runs 3` ended its summary's line with
    # "p90 16.4" and began the next with "ms;" (textwrap breaks at any space).
    from rdv_tui.cli.commands.lab import _summary_line

    summary = {
        "direct": 3, "relay": 0, "failed": 0, "p50_ms": 10.7, "p90_ms": 1106.8,
        "chosen": {"direct public4": 3}, "data_verified": 3, "runs": 3,
    }  # fmt: skip
    lines = _summary_line(summary, room).split("\n")
    assert all(len(line) <= room for line in lines), lines
    assert not any(re.search(r"\d\.\d$", line) for line in lines), lines
    assert " ".join(line.strip() for line in lines).count("ms") == 2
