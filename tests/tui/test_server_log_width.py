"""The Server screen's event log never breaks a figure from its unit, at any width.

Rich breaks a line at any space: at 40 columns the log read ``lobby 400`` over ``ms`` and
``ended (p2p) after 0.5`` over ``s, D→A 0 B``; at 80, ``lobby 800`` over ``ms``.
"""

from __future__ import annotations

import itertools
import re

import pytest

from rdv_tui.app import AppConfig, make_app
from rdv_tui.scenes import stage_server
from rdv_tui.widgets.server_view import ServerLog

UNIT_FIRST = re.compile(r"^\s*(\d+\.\d+s\s+)?(ms|s|B|KiB|MiB|GiB|TiB|chars)\b")


@pytest.mark.parametrize("size", [(40, 30), (60, 20), (80, 24)])
async def test_no_figure_is_split_from_its_unit(size: tuple[int, int]) -> None:
    app = make_app(AppConfig(embedded_server=False, serve=True))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await stage_server(app)
        await pilot.pause()
        log = app.server_screen.query_one(ServerLog)
        lines = [strip.text for strip in log.lines]
    assert any("ms" in line for line in lines), lines
    split = [
        (before, after)
        for before, after in itertools.pairwise(lines)
        if re.search(r"\d\s*$", before) and UNIT_FIRST.match(after)
    ]
    assert not split, split
    # Still folded into the log's width, under the times.
    assert all(len(line.rstrip()) <= size[0] for line in lines), lines
    assert any("400 ms" in line for line in lines), lines
