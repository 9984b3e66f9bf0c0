"""``rdv lab matrix --predict`` and ``--presets`` fit the terminal (80 columns into a pipe).

``--predict`` added two columns to a 79-column table: 97 columns, and an 80-column terminal
folded every row under the next. ``--presets`` printed an 87-column header and rows past
100 with their paths. The columns the CLI builds are checked here with the widest figures
ten runs give, at 80 columns and at the terminal's ``$COLUMNS``.
"""

from __future__ import annotations

from typing import Any

import pytest

from rdv_core.lab import PRESETS, MatrixRow, format_header, format_row, matrix_cells
from rdv_core.lab._preset_table import PATHS_AT, preset_header, preset_row
from rdv_tui.cli.commands.lab import matrix_columns

WIDEST: dict[str, Any] = {
    "runs": 10,
    "direct": 7,
    "relay": 3,
    "failed": 0,
    "p50_ms": 9999.4,
    "p90_ms": 0.04,
    "port_remaps": 10,
}


def _table(predict: bool, room: int | None, pattern: str = "*") -> list[str]:
    cells = matrix_cells(pattern=pattern)
    columns, note = matrix_columns(cells, predict=predict, room=room)
    extra = {"predicted": "possible", "agree": "NO"} if predict else {}
    rows = [MatrixRow(cell, WIDEST, 10, extra=extra) for cell in cells]
    return format_header(columns, note) + [format_row(row, columns) for row in rows]


def test_the_predicted_matrix_fits_80_columns_and_says_what_it_left_out() -> None:
    lines = _table(True, 80)
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "left out to fit 80 columns: clash, p50, p90 (see --json)" in lines
    header = next(line for line in lines if line.startswith("cell"))
    assert header.split() == ["cell", "expect", "predicted", "outcome", "agree", "ok", "bad"]


def test_a_wide_terminal_gets_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # what shutil.get_terminal_size reads first
    lines = _table(True, None)
    header = next(line for line in lines if line.startswith("cell"))
    assert header.split()[-3:] == ["clash", "p50", "p90"]
    assert not any(line.startswith("left out") for line in lines)


def test_narrower_cell_names_keep_more_columns() -> None:
    # Without the loss cells the names are 21 wide, not 26: the clash count stays.
    lines = _table(True, 80, "a-rst/b-drop [0-9]*/[0-9]")
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("cell"))
    assert "clash" in header.split() and "p90" not in header.split()


def test_the_plain_matrix_is_as_before_at_80_columns() -> None:
    lines = _table(False, 80)
    assert max(len(line) for line in lines) <= 80
    assert not any(line.startswith("left out") for line in lines)


def test_the_presets_table_fits_80_columns() -> None:
    lines = list(preset_header())
    for spec in PRESETS.values():
        summary = {
            **WIDEST,
            "p90_ms": 9999.9,
            # Every path a run can take, as many as ten runs give.
            "chosen": {"relay": 3, "direct public4": 4, "failed": 1, "direct private6": 2},
        }
        lines += preset_row(spec.name, spec.expect, summary, 80).splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    # A wrapped path continues under the first, never at column 0.
    continued = [line for line in lines if line.startswith(" ")]
    assert continued and all(line[PATHS_AT - 1] == " " != line[PATHS_AT] for line in continued)
    assert lines[0] == ("preset            expect  expected p50 ms p90 ms  chosen paths")
