"""A candidate's story (Enter on a race row) wraps each event beside its time.

At 60 columns the fields of a retry went on at the modal's left edge, under the times
(``reason=refused, errno=111`` read as a line of its own, with no time and no event).
At 6 and 7 columns its scrollbar came and went for good (test_small_terminals' module doc).
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from rdv_tui.app import AppConfig, make_app
from rdv_tui.screens.candidate import CandidateDetails

from tests.tui.test_small_terminals import scrollbar_changes

#: Where an event's type starts: its time (``    431.8 ms``) and two spaces.
TYPE_COLUMN = 14


async def test_a_wrapped_event_stays_beside_its_time(race_file: Path) -> None:
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#race-table", DataTable)
        table.focus()
        table.move_cursor(row=0)  # candidate #1: refused, refused, reset, then picked
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CandidateDetails)
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        # The modal's inside: between its borders, less its padding.
        inside = [line.split("█")[1][1:] for line in lines if line.count("█") >= 2]
        wrapped = [line for line in inside if "reason=" in line and "DialRetried" not in line]
        assert wrapped, "at 60 columns a retry's fields wrap"
        for line in wrapped:
            assert line.index("reason=") >= TYPE_COLUMN, inside
        flips = await scrollbar_changes(app, pilot, (6, 20))
        assert not flips, f"{flips} scrollbar changes at 6x20"
