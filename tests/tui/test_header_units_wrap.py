"""A narrow terminal breaks the race header and the Server screen's counters between their
figures, never inside one: a label stays with its value.

At 40 columns (the README's 40x12 layout) the demo's Server screen read

    serving http://127.0.0.1:35289  lobby
    0  open pairs 0

so "0 open pairs 0" looked like one figure, and the race header ended a line on
``observed`` with the address on the next. A real demo race on loopback, then the lines on
screen of both widgets at widths from 24 to 100 columns.
"""

from __future__ import annotations

import re
from pathlib import Path

from textual.widget import Widget

from rdv_tui.app import AppConfig, make_app
from rdv_tui.widgets.race_header import ServerPhaseHeader
from rdv_tui.widgets.server_view import ServerCounters

from tests.tui.test_live import wait_for

FIGURES = re.compile(
    r"wait-for-p2p \S+|connect [\d.]+ ms|lobby [\d.]+ ms|observed \S+ \w+|peers \d+"
    r"|serving \S+|lobby \d+|open pairs \d+|pairs \d+|p2p \d+|relay \d+|relayed [\d.]+ \S?i?B"
    r"|rejected \d+|lobby timeouts \d+"
)
WIDTHS = (24, 30, 34, 38, 40, 46, 52, 60, 70, 80, 100)


def _lines(widget: Widget) -> list[str]:
    return [widget.render_line(y).text.strip() for y in range(widget.size.height)]


def _broken(widget: Widget) -> list[str]:
    """The figures of ``widget`` that no line on screen holds whole (if they fit at all)."""
    lines = _lines(widget)
    whole = " ".join(lines)
    return [
        f"{widget.size.width}: {figure!r} in {lines}"
        for figure in FIGURES.findall(whole)
        if len(figure) <= widget.content_size.width and not any(figure in line for line in lines)
    ]


async def test_a_label_stays_with_its_value_at_any_width(tmp_path: Path) -> None:
    config = AppConfig(demo_dir=tmp_path / "demo", download_dir=tmp_path / "demo" / "you")
    app = make_app(config)
    async with app.run_test(size=(100, 30)) as pilot:
        race = app.race_screen
        await wait_for(pilot, lambda: race.model.result is not None, limit=60)
        await pilot.press("f3")
        header = race.query_one(ServerPhaseHeader)
        broken = []
        for width in WIDTHS:
            await pilot.resize_terminal(width, 30)
            await pilot.pause(0.1)
            assert "observed" in " ".join(_lines(header))
            broken += _broken(header)
        await pilot.press("f5")
        counters = app.server_screen.query_one(ServerCounters)
        await wait_for(pilot, lambda: "open pairs" in " ".join(_lines(counters)), limit=30)
        for width in WIDTHS:
            await pilot.resize_terminal(width, 30)
            await pilot.pause(0.1)
            broken += _broken(counters)
        assert not broken, broken
        await pilot.press("ctrl+q")
