"""The race dashboard, driven by a replayed race (Pilot)."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable

from rdv_core.events import Event, read_jsonl
from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.screens.race import RaceScreen
from rdv_tui.widgets.race_header import ResultBanner
from rdv_tui.widgets.waterfall import Waterfall


def _table_rows(screen: RaceScreen) -> dict[str, tuple[str, ...]]:
    table: DataTable[object] = screen.query_one("#race-table", DataTable)
    return {
        str(key.value): tuple(str(getattr(c, "plain", c)) for c in table.get_row(key))
        for key in (row.key for row in table.ordered_rows)
    }


async def test_replay_reproduces_the_rows(race_file: Path, tmp_path: Path) -> None:
    app = make_app(AppConfig(replay=race_file, export_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RaceScreen)
        rows = _table_rows(screen)
        assert list(rows) == [f"c{i}" for i in range(1, 8)]  # sorted by candidate id
        assert rows["c1"][1:3] == ("observed", "203.0.113.99:52000")
        assert rows["c1"][-1] == "★ picked (after 3 retries): 671 ms"
        assert rows["c3"][-1].startswith("failed: misdial")
        assert rows["c5"][-1] == "skipped: space link6 not enabled"
        assert rows["c7"][1] == "relay"
        banner = str(screen.query_one(ResultBanner).render())
        assert "P2P to 203.0.113.99:52000" in banner and "671 ms" in banner
        waterfall = str(screen.query_one(Waterfall).render())
        assert "★ picked 671 ms" in waterfall and "✗ misdial" in waterfall


async def test_rows_appear_and_change_as_events_arrive(race_events: list[Event]) -> None:
    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("race")
        screen = app.race_screen
        table = screen.query_one("#race-table", DataTable)
        first_row = None
        for event in race_events:
            # What the client's on_event does during a live race.
            app.post_message(RdvApp.CoreEvent(event, "race"))
            await pilot.pause()
            if "c1" in _table_rows(screen) and first_row is None:
                first_row = _table_rows(screen)["c1"][-1]
                row_count = table.row_count
        assert first_row == "dialing"
        rows = _table_rows(screen)
        assert rows["c1"][-1].startswith("★ picked")
        assert table.row_count == 7 and row_count <= 7


async def test_export_writes_valid_jsonl(race_file: Path, tmp_path: Path) -> None:
    app = make_app(AppConfig(replay=race_file, export_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.press("e")  # a second export never overwrites the first
        await pilot.pause()
    _check_exports(tmp_path, race_file)


def _check_exports(directory: Path, race_file: Path) -> None:
    exports = sorted(directory.glob("rdv-race-*.jsonl"))
    assert len(exports) == 2
    original = race_file.read_text().splitlines()
    lines = exports[0].read_text().splitlines()
    assert [json.loads(x) for x in lines] == [json.loads(x) for x in original]
    with exports[1].open() as stream:
        assert len(list(read_jsonl(stream))) == len(original)


async def test_save_svg_and_zoom(race_file: Path, tmp_path: Path) -> None:
    app = make_app(AppConfig(replay=race_file, export_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        waterfall = app.screen.query_one(Waterfall)
        assert waterfall.axis_window()[0] > 0.4  # zoomed on the race by default
        await pilot.press("z")
        assert waterfall.axis_window() == (0.0, 0.6761)
        await pilot.press("s")
        await pilot.pause()
    _check_svg(tmp_path)


def _check_svg(directory: Path) -> None:
    svgs = list(directory.glob("rdv-race-*.svg"))
    assert len(svgs) == 1 and svgs[0].read_text().lstrip().startswith("<svg")


async def test_animated_replay_plays_the_events_again(race_file: Path) -> None:
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RaceScreen)
        worker = screen.play(list(screen.model.events), speed=5.0)
        await pilot.pause(0.05)
        assert 0 < len(screen.model.events) < 24  # reset, then fed at the recorded pace
        await worker.wait()
        await pilot.pause()
        assert len(screen.model.events) == 24
        assert _table_rows(screen)["c1"][-1].startswith("★ picked")


async def test_theme_change_recolours_the_rows(race_file: Path) -> None:
    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RaceScreen)
        table = screen.query_one("#race-table", DataTable)
        before = str(table.get_cell("c1", "state").style)
        app.theme = "gruvbox"
        await pilot.pause(0.2)
        after = str(table.get_cell("c1", "state").style)
        assert before != after
        assert app.theme_variables["success"].lower()[:7] in after.lower()


async def test_enter_on_a_row_shows_the_candidates_story(race_file: Path) -> None:
    from rdv_tui.screens.candidate import CandidateDetails

    app = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#race-table", DataTable)
        table.focus()
        table.move_cursor(row=0)  # candidate #1: refused, refused, reset, then picked
        await pilot.press("enter")
        await pilot.pause()
        details = app.screen
        assert isinstance(details, CandidateDetails)
        assert [e.type for e in details.events] == [
            "DialStarted",
            "DialRetried",
            "DialRetried",
            "DialRetried",
            "CandidateConnected",
            "HandshakeOk",
            "Picked",
        ]
        text = "\n".join(strip.text for strip in details._compositor.render_strips())
        assert "DialRetried  attempt=4, reason=reset, errno=104" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RaceScreen)
