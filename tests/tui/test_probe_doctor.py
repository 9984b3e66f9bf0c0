"""The Doctor screen runs when shown and when asked (the app's own server on loopback).

Its "a check is running" flag was called ``_running``, the name of Textual's own
"this message pump runs" flag: it was True as soon as the screen ran, so F6 before
any attempt showed ``…`` in every row for good and ``r`` (Run again) did nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from rdv_core.doctor import LABELS, explain
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


def _in_order(words: list[str], text: list[str]) -> bool:
    """Whether ``words`` occur in ``text`` in this order (lines of a wrapped cell)."""
    it = iter(text)
    return all(word in it for word in words)


@pytest.mark.parametrize("width", [40, 60, 80])
async def test_every_check_says_what_it_means_at_any_width(tmp_path: Path, width: int) -> None:
    """A real doctor run on loopback: below about 70 columns the 'what it means' column had
    no room left beside the result (at 40 columns the screen showed each result and no word
    of what it means); now the meaning goes under the result."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(width, 200)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        await pilot.press("f6")
        doctor = app.doctor_screen
        await wait_for(pilot, lambda: doctor.report is not None, limit=30)
        await pilot.pause(0.2)
        report = doctor.report
        assert report is not None
        text = " ".join(s.text for s in app.screen._compositor.render_strips()).split()
        checked = 0
        for name in LABELS:
            finding = report.finding(name)
            if finding.value is None:
                continue
            meaning = explain(name, finding)
            assert _in_order(meaning.split(), text), (name, meaning)
            checked += 1
        assert checked >= 3
