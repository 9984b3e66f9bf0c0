"""The Race screen says what is true and its keys work as soon as it shows (a real race
on loopback: the app's embedded server and a demo peer that accepts)."""

from __future__ import annotations

from pathlib import Path

from rdv_tui.app import make_app
from rdv_tui.screens.candidate import CandidateDetails
from rdv_tui.screens.race import RaceScreen
from rdv_tui.widgets.race_header import ServerPhaseHeader

from tests.tui.test_live import app_dials_a_demo_peer, config, wait_for


async def test_no_attempt_yet_then_enter_opens_a_candidates_story(
    tmp_path: Path,
) -> None:
    """The README says ``Enter`` on a row opens its story: the focus was on the scrolling
    body around the table, so Enter did nothing and Up/Down scrolled the table's header
    out of sight; only a click or ``tab`` first got there. And F3 before connecting: the
    header said ``waiting for the attempt to start…`` of an attempt nobody had started."""
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(80, 24)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        await pilot.press("f3")
        await pilot.pause()
        header = app.race_screen.query_one(ServerPhaseHeader)
        assert "no attempt yet" in str(header.render()), str(header.render())
        await pilot.press("f2")
        app.controller.session_switch_delay = 60.0  # the dashboard stays
        await pilot.press("ctrl+r")
        race = app.race_screen
        await wait_for(pilot, lambda: app.screen is race and race.model.result is not None)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CandidateDetails), f"Enter did nothing ({app.focused})"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RaceScreen)
