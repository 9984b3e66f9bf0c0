"""A file's row keeps its size whole (or leaves it out) and a space before its status.

At 40 columns Textual's ellipsis cut the row's name cell: ``↑ notes.md (18.0 K…✔ verified
9f2c41d0``, the size cut inside its unit and run into the status.
"""

from __future__ import annotations

import re

import pytest

from rdv_tui.app import make_app
from rdv_tui.scenes import session_app_config, stage_session

ROW = re.compile(r"[↑↓] (?P<name>\S+)(?P<size> \([^)]*\))? +(?P<status>✔ verified|[\d.]+ \S+/s)")
SIZE = re.compile(r" \(\d+(\.\d)? (B|KiB|MiB|GiB)\)")


@pytest.mark.parametrize("size", [(40, 30), (60, 30), (80, 30)])
async def test_a_row_keeps_whole_figures(size: tuple[int, int]) -> None:
    app = make_app(session_app_config())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await stage_session(app)
        await pilot.pause()
        assert app.screen._compositor is not None
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
    rows = [line.strip("│ ") for line in lines if "✔ verified" in line or "ETA" in line]
    rows = [row for row in rows if row[:1] in "↑↓"]
    assert len(rows) >= 2, lines
    for row in rows:
        found = ROW.match(row)
        assert found is not None, row
        assert found["size"] is None or SIZE.fullmatch(found["size"]), row
        assert "…✔" not in row and "K…" not in row, row
        # The end of the name is the file: kept when the name is cut.
        assert found["name"].endswith((".jpg", ".md")), row
