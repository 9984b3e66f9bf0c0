"""The race table and the waterfall fit the terminal's width (Pilot, the fixture race).

At 80 columns the table used to run past the screen's edge and cut the state column in
the middle of a word (``★ picked (after 3 re``), and the waterfall its reasons
(``✗ cancelled (picker d``): the *why* of each candidate, the dashboard's point.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len

from rdv_core import events as ev
from rdv_core.events import Candidate
from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.race_model import CandidateRow, RowState, without_asides
from rdv_tui.screens.race import RaceScreen
from rdv_tui.widgets.race_table import RaceTable
from rdv_tui.widgets.waterfall import Waterfall, _fit_reason


def _states(table: RaceTable) -> dict[str, str]:
    return {str(row.key.value): table.get_row(row.key)[-1].plain for row in table.ordered_rows}


def _columns_width(table: RaceTable) -> int:
    return sum(column.get_render_width(table) for column in table.columns.values())


@pytest.mark.parametrize("size", [(40, 24), (60, 24), (80, 24), (100, 30)])
async def test_the_table_never_runs_past_its_edge(race_file: Path, size: tuple[int, int]) -> None:
    """At 40 columns the state column was past the right edge, out of sight: the time, the
    origin and the space give it their room."""
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RaceScreen)
        table = screen.query_one(RaceTable)
        assert _columns_width(table) <= table.scrollable_content_region.width
        assert [c.key.value for c in table.columns.values()][-1] == "state"
        assert "family" not in {c.key.value for c in table.columns.values()}
        states = _states(table)
        rows = screen.model.rows
        for cid, row in rows.items():
            shown = states[f"c{cid}"]
            # Whole, short, or visibly cut: never a silent cut.
            assert shown in (row.state_text, row.short_state_text) or (
                shown.endswith("…") and row.short_state_text.startswith(shown[:-1])
            ), (cid, shown)
        assert states["c3"] == "failed: misdial"  # the word that matters survives
        if size[0] == 80:
            assert states["c1"] == "★ picked ↻3: 671 ms"
        lines = str(screen.query_one(Waterfall).render()).splitlines()
        waterfall = screen.query_one(Waterfall)
        assert all(cell_len(line) <= waterfall.size.width for line in lines)
        if size[0] >= 80:  # narrower, the waterfall cuts its reasons with …
            assert any(line.endswith("✗ cancelled (picker done)") for line in lines)
            assert any(line.endswith("○ lost to #1 by 4.5 ms") for line in lines)


async def test_a_wide_table_shows_every_column_and_every_word(race_file: Path) -> None:
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RaceTable)
        assert "family" in {c.key.value for c in table.columns.values()}
        assert _states(table)["c1"] == "★ picked (after 3 retries): 671 ms"
        assert _columns_width(table) <= table.scrollable_content_region.width
        # Narrower, then wide again: the layout follows, the cursor stays on its row.
        table.move_cursor(row=3)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert "family" not in {c.key.value for c in table.columns.values()}
        assert _columns_width(table) <= table.scrollable_content_region.width
        assert table.cursor_row == 3
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert "family" in {c.key.value for c in table.columns.values()}
        assert _states(table)["c1"] == "★ picked (after 3 retries): 671 ms"
        assert table.cursor_row == 3


def test_the_short_state_keeps_the_word_and_drops_the_asides() -> None:
    row = CandidateRow(Candidate(1, "192.0.2.1:5", "public4", "self"), RowState.FAILED)
    row.detail = "unreachable (errno 101) (no IPv6 route)"
    assert row.short_state_text == "failed: unreachable"
    row.state, row.retries, row.detail = RowState.PICKED, 2, "3 ms"
    assert row.short_state_text == "★ picked ↻2: 3 ms"
    assert without_asides("(only an aside)") == "(only an aside)"
    assert without_asides("refused (errno 111 (nested))") == "refused"


def test_a_reason_fits_whole_short_or_cut() -> None:
    assert _fit_reason("cancelled (picker done)", 30) == "cancelled (picker done)"
    assert _fit_reason("cancelled (picker done)", 12) == "cancelled"
    assert _fit_reason("lost to #1 by 4.5 ms", 12) == "lost to #1…"
    assert _fit_reason("lost to #1 by 4.5 ms", 3) == ""


async def test_a_live_race_at_80_columns_fits_after_every_event(
    race_events: list[ev.Event],
) -> None:
    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("race")
        table = app.race_screen.query_one(RaceTable)
        for event in race_events:
            app.post_message(RdvApp.CoreEvent(event, "race"))  # as the client's on_event does
            await pilot.pause()
            assert _columns_width(table) <= table.scrollable_content_region.width, event
        assert table.row_count == len(app.race_screen.model.rows) == 7
        assert _states(table)["c1"] == "★ picked ↻3: 671 ms"


async def test_full_ipv6_addresses_give_up_their_middle_for_the_state(
    race_events: list[ev.Event],
) -> None:
    """A privacy address is 47 cells with its port: at 80 columns it left the state none."""
    app = make_app(AppConfig(embedded_server=False))
    long_addr = "[2001:db8:1234:5678:9abc:def0:1234:5678]:52000"
    far = Candidate(9, long_addr, "public6", "self")
    extra = [ev.DialStarted(0.5, far), ev.CandidateFailed(0.6, far, "unreachable", 101, "")]
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("race")
        table = app.race_screen.query_one(RaceTable)
        for event in [*race_events, *extra]:
            app.post_message(RdvApp.CoreEvent(event, "race"))
            await pilot.pause()
        assert _columns_width(table) <= table.scrollable_content_region.width
        shown = table.get_row("c9")[2].plain
        assert "…" in shown and shown.startswith("[2001:db8") and shown.endswith(":52000"), shown
        assert _states(table)["c9"] == "failed: unreachable"
        await pilot.resize_terminal(160, 48)  # room again: the whole address
        await pilot.pause()
        assert table.get_row("c9")[2].plain == long_addr
