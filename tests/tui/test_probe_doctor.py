"""The Doctor screen runs when shown and when asked (the app's own server on loopback).

Its "a check is running" flag was called ``_running``, the name of Textual's own
"this message pump runs" flag: it was True as soon as the screen ran, so F6 before
any attempt showed ``…`` in every row for good and ``r`` (Run again) did nothing.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from rdv_tui.app import make_app

from tests.tui.test_live import config, wait_for


async def test_f6_checks_and_r_checks_again(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        await pilot.press("f6")
        doctor = app.doctor_screen
        await wait_for(pilot, lambda: doctor.report is not None, limit=30)
        first = doctor.report
        summary = doctor.query_one("#doctor-summary", Static)
        assert str(summary.render()).strip()
        await pilot.press("r")
        await wait_for(pilot, lambda: doctor.report is not first, limit=30)
        assert doctor.is_running  # Textual's own flag is left alone
