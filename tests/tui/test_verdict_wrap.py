"""The Race screen's verdict wraps each line under its own column, at every width.

Textual wrapped the verdict back to the left edge: the rest of ``predicted: ...`` and of
each candidate's line went under the labels (a real race against the demo peer on
loopback, whose skip reasons are long).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_tui.app import RdvApp, make_app

from tests.tui.test_live import app_dials_a_demo_peer, config, wait_for
from tests.tui.test_small_terminals import shown

HEADS = ("predicted: ", "verdict: ", "doctor: ", "  our candidates:", "  the peer's candidates:")


def verdict_lines(app: RdvApp) -> list[str]:
    """The diagnosis as drawn: its lines, inside its border (on top) and padding."""
    region = shown(app, "#diagnosis")
    strips = app.screen._compositor.render_strips()
    return [
        strips[y].text[region.x + 1 : region.right - 1].rstrip()
        for y in range(region.y + 1, region.bottom)
    ]


def assert_hangs(lines: list[str]) -> None:
    assert lines and lines[0].startswith("predicted: "), lines
    for line in lines:
        if not line.strip() or line.startswith(HEADS) or line.startswith("    "):
            continue
        pytest.fail(f"a line's rest at the left edge: {line!r} in {lines}")
    # A candidate's line goes on under its own text, not under the list's indent.
    assert all(not line.startswith("     ") or line.startswith("      ") for line in lines)


@pytest.mark.parametrize("widths", [(80, 60), (100, 50)], ids=["80-then-60", "100-then-50"])
async def test_the_verdict_wraps_under_its_own_column(
    tmp_path: Path, widths: tuple[int, int]
) -> None:
    app = make_app(config(tmp_path))
    first, then = widths
    async with (
        app.run_test(size=(first, 80)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        app.controller.session_switch_delay = 3600.0  # stay on the dashboard
        await pilot.press("ctrl+r")
        race = app.race_screen
        await wait_for(pilot, lambda: "verdict:" in race.diagnosis, limit=30)
        await pilot.pause(0.2)
        assert_hangs(verdict_lines(app))
        await pilot.resize_terminal(then, 80)
        await pilot.pause(0.3)
        lines = verdict_lines(app)
        assert max(len(line) for line in lines) <= then - 2
        assert_hangs(lines)
