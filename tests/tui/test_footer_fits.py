"""Every screen's footer shows all its keys at 80 columns, none behind the palette key.

At 80 columns the race and connect footers used to hide their last screen keys under
``^p palette`` (the race's ``f5``/``f6``, the connect form's ``Doctor``), though their code
said every key fits. At 40 columns the keys ran under the palette key (the Session screen
showed ``^o Send file ^l End session``, the race screen half its screen keys) and no width
showed how to quit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.screens.race import RaceScreen

MODES = ("connect", "race", "session", "server", "doctor")


def _hidden_keys(app: RdvApp) -> list[str]:
    footer = app.screen.query_one(Footer)
    keys = list(footer.query(FooterKey))
    palette = [k for k in keys if k.has_class("-command-palette")]
    assert len(palette) == 1
    edge = min(palette[0].region.x, app.size.width)
    return [
        f"{k.key_display} {k.description}"
        for k in keys
        if not k.has_class("-command-palette") and (k.region.width == 0 or k.region.right > edge)
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_no_key_hides_at_80_columns(mode: str, race_file: Path) -> None:
    app: Any = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode(mode)
        await pilot.pause()
        assert _hidden_keys(app) == []
        if mode == "race":
            race = app.screen
            assert isinstance(race, RaceScreen)
            race.running = True  # a live attempt: "c Cancel" shows, "p Replay" goes
            await pilot.pause()
            shown = [k.key for k in app.screen.query(FooterKey)]
            assert "c" in shown and "p" not in shown
            assert _hidden_keys(app) == []


#: The keys each screen must show at any width (its own, short or not, and ctrl+q).
MUST_SHOW = {
    "connect": {"ctrl+r", "ctrl+q"},
    "race": {"e", "z", "p", "ctrl+q"},
    "session": {"ctrl+o", "ctrl+l", "ctrl+q"},
    "server": {"s", "ctrl+q"},
    "doctor": {"r", "s", "ctrl+q"},
}


@pytest.mark.parametrize("width", [40, 50, 60, 80, 120, 200])
async def test_every_width_shows_the_screens_keys_and_quit(width: int, race_file: Path) -> None:
    app: Any = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(width, 24)) as pilot:
        for mode in MODES:
            await app.switch_mode(mode)
            await pilot.pause()
            shown = {k.key for k in app.screen.query(FooterKey)}
            assert MUST_SHOW[mode] <= shown, (mode, shown)
            assert _hidden_keys(app) == [], mode


async def test_a_resize_lays_the_footer_out_again(race_file: Path) -> None:
    """From 120 columns to 40 during a live race, and back: the keys follow the width."""
    app: Any = make_app(AppConfig(replay=race_file))
    async with app.run_test(size=(120, 24)) as pilot:
        await app.switch_mode("race")
        race = app.screen
        assert isinstance(race, RaceScreen)
        race.running = True
        await pilot.pause()
        wide = [k.description for k in app.screen.query(FooterKey)]
        assert "Connect" in wide and "Cancel" in wide
        await pilot.resize_terminal(40, 12)
        await pilot.pause(0.2)
        shown = {k.key for k in app.screen.query(FooterKey)}
        assert {"c", "ctrl+q"} <= shown and "f2" not in shown
        assert _hidden_keys(app) == []
        await pilot.resize_terminal(120, 24)
        await pilot.pause(0.2)
        assert [k.description for k in app.screen.query(FooterKey)] == wide
