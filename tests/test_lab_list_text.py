"""``rdv lab list`` fits the terminal: each preset's lines wrap under their own column."""

from __future__ import annotations

import io

import pytest

from rdv_core.lab import PRESETS
from rdv_tui.cli.commands.lab import _list


@pytest.mark.parametrize("columns", [80, 100])
def test_lab_list_wraps_to_the_terminal_under_its_columns(columns: int) -> None:
    out = io.StringIO()
    assert _list(PRESETS, out, columns=columns) == 0
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= columns
    width = max(len(name) for name in PRESETS)
    starts = [line for line in lines if not line.startswith(" ")]
    assert [line.split()[0] for line in starts] == list(PRESETS)  # one head line per preset
    # Every other line sits under the summary column, never back at column 0.
    assert all(line.startswith(" " * (width + 10)) for line in lines if line not in starts)
    # Nothing is lost to the wrapping: the words of every reason are all there, in order.
    text = " ".join(out.getvalue().split())
    for spec in PRESETS.values():
        assert " ".join(spec.why.split()) in text
