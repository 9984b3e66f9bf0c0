"""The race's verdict (how it ended and why) is on the screen without scrolling.

Under the waterfall, at 80x24 the verdict began below the last row: a user on a standard
terminal saw the table and the waterfall, and had to scroll the body to learn the outcome
(stop 37). Now its sentence sits under the result banner, at every size the README states.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.geometry import Region

from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.scene_doctor import stage_verdict

from tests.tui.test_small_terminals import shown


def screen_lines(app: RdvApp) -> list[str]:
    """What the terminal shows, row by row (the footer's row left out)."""
    strips = app.screen._compositor.render_strips()
    return [strip.text for strip in strips[: app.size.height - 1]]


@pytest.mark.parametrize(
    "size", [(80, 24), (60, 24), (40, 12), (160, 48)], ids=["80x24", "60x24", "40x12", "160x48"]
)
async def test_the_verdict_is_in_sight(race_file: Path, size: tuple[int, int]) -> None:
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await stage_verdict(app)
        await pilot.pause()
        lines = screen_lines(app)
        assert any(line.lstrip().startswith("verdict: Direct via") for line in lines), lines
        widget = app.race_screen.query_one("#verdict")
        above_footer = Region(0, 0, size[0], size[1] - 1)
        assert above_footer.contains_region(widget.region), (widget.region, size)
        assert shown(app, "#verdict") == widget.region  # not clipped by a container
        # The dashboard keeps its table and waterfall in sight (the body scrolls the rest).
        assert shown(app, "#race-table").height >= 1
        assert shown(app, "#race-body").height >= 3
