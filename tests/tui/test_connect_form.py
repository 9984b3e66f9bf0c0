"""The Connect form as a new user meets it (issue 16): what shows, what it follows,
what it remembers, and what ``rdv tui`` can preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Checkbox, Input, RadioButton, Select, Static

from rdv_core.wire import SINGLE_SPACES, AddrSpace, format_spaces
from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.cli import build_parser
from rdv_tui.cli.commands.tui import form_settings
from rdv_tui.screens.connect import ConnectScreen
from rdv_tui.widgets.toggles import OnOffCheckbox


def checked_spaces(screen: ConnectScreen) -> AddrSpace:
    spaces = AddrSpace.INVALID
    for space in SINGLE_SPACES:
        if screen.query_one(f"#space-{format_spaces(space)}", Checkbox).value:
            spaces |= space
    return spaces


def share(screen: ConnectScreen) -> str:
    return str(screen.query_one("#share", Static).render())


async def test_race_only_visible_banner_follows_server_loose_codes_refused() -> None:
    app = make_app(AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.connect_screen
        # The race-only checkbox is in the Tab order, so it must be on screen: the role
        # radios used to stretch and push it out, at 80x24 and at 160x48.
        for size in ((80, 24), (160, 48)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            box = screen.query_one("#race-only", Checkbox)
            region = box.region
            assert region.width >= len("race only (no session)") and region.height == 1
            assert app.screen.region.contains_region(region), size
            widget, _ = app.screen.get_widget_at(region.x + region.width // 2, region.y)
            assert widget is box, size
            accept = screen.query_one("#role-accept", RadioButton)
            assert accept.region.right <= region.x

        # The banner follows the Server field.
        assert "http://rdv.example.net:8080" in share(screen)
        screen.query_one("#server", Input).value = "http://other.example.org:9000/rdv"
        await pilot.pause()
        text = share(screen)
        assert "http://other.example.org:9000/rdv" in text and "rdv.example.net" not in text

        # On / off is not only a colour: the glyph differs.
        toggle = screen.query_one("#force-relay", OnOffCheckbox)
        off = str(toggle.render())
        toggle.value = True
        await pilot.pause()
        assert str(toggle.render()) != off and "✔" in str(toggle.render())
        toggle.value = False

        # Codes a person mistyped are refused, and the text stays.
        for code, message in [
            ("apple river", "starts with the number"),
            ("7-y", "too short"),
            ("x-y", "starts with the number"),
        ]:
            screen.query_one("#code", Input).value = code
            await pilot.press("ctrl+r")
            await pilot.pause()
            assert message in str(screen.query_one("#error", Static).render()), code
            assert app.current_mode == "connect"
            assert screen.query_one("#code", Input).value == code


async def test_local_server_means_loopback_spaces_and_says_so(tmp_path: Path) -> None:
    """The one-machine trap: with a server on loopback both sides must race loopback."""
    app = make_app(AppConfig(download_dir=tmp_path, export_dir=tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.connect_screen
        while app.controller.embedded is None:
            await pilot.pause(0.02)
        await pilot.pause()
        assert checked_spaces(screen) == AddrSpace.LOOPBACK
        assert "--spaces loopback" in share(screen)
        # Another (remote) server: the default spaces, and no loopback hint.
        screen.query_one("#server", Input).value = "http://rdv.example.net:8080"
        await pilot.pause()
        assert checked_spaces(screen) == AddrSpace.DEFAULT
        assert "--spaces loopback" not in share(screen)
        # Back to a local one typed by hand.
        screen.query_one("#server", Input).value = "http://[::1]:8080"
        await pilot.pause()
        assert checked_spaces(screen) == AddrSpace.LOOPBACK


async def test_form_settings_are_remembered_and_rdv_tui_options_win(tmp_path: Path) -> None:
    recent = tmp_path / "recent.json"
    server = "http://127.0.0.1:9"  # nothing listens: the attempt fails at once

    def make(form: dict[str, Any] | None = None) -> RdvApp:
        config = AppConfig(embedded_server=False, server_url=server, recent_path=recent, form=form)
        return make_app(config)

    app = make()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.connect_screen
        await pilot.pause()
        screen.query_one("#role-accept", RadioButton).value = True
        screen.query_one("#space-loopback6", Checkbox).value = False
        screen.query_one("#picker", Select).value = "wait-constant"
        screen.query_one("#wait", Input).value = "2.5"
        screen.query_one("#timeout", Input).value = "30"
        await pilot.pause()
        await pilot.press("ctrl+r")
        while not app.recent.settings:  # remembered as the attempt starts
            await pilot.pause(0.02)
    # rdv tui --wait 0.5 --timeout 9: those win; the rest comes from the memory.
    args = build_parser().parse_args(["tui", "--wait", "0.5", "--timeout", "9"])
    app = make(form_settings(args))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        params = app.connect_screen.params()
        assert (params.role, params.picker, params.wait_s, params.timeout_s) == (
            "accept",
            "wait-constant",
            0.5,
            9.0,
        )
        assert params.spaces == AddrSpace.LOOPBACK4
    args = build_parser().parse_args(["tui", "--spaces", "loopback6", "--pick-first"])
    assert form_settings(args) == {"spaces": "loopback6", "picker": "pick-first"}
    with pytest.raises(ValueError, match="--spaces"):
        form_settings(build_parser().parse_args(["tui", "--spaces", "moon"]))
