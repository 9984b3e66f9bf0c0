"""The Connect form as a new user meets it (issue 16): what shows, what it follows,
what it remembers, and what ``rdv tui`` can preset."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_race_only_checkbox_is_visible(size: tuple[int, int]) -> None:
    """It is in the Tab order, so it must be on screen: the role radios pushed it out."""
    app = make_app(AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        box = app.connect_screen.query_one("#race-only", Checkbox)
        region = box.region
        assert region.width >= len("race only (no session)") and region.height == 1
        assert app.screen.region.contains_region(region)
        widget, _ = app.screen.get_widget_at(region.x + region.width // 2, region.y)
        assert widget is box
        # The role radios do not take the row either.
        accept = app.connect_screen.query_one("#role-accept", RadioButton)
        assert accept.region.right <= region.x


async def test_banner_follows_the_server_field_and_checkbox_state_shows() -> None:
    app = make_app(AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.connect_screen
        await pilot.pause()
        assert "http://rdv.example.net:8080" in share(screen)
        screen.query_one("#server", Input).value = "http://other.example.org:9000/rdv"
        await pilot.pause()
        text = share(screen)
        assert "http://other.example.org:9000/rdv" in text and "rdv.example.net" not in text
        # On / off is not only a colour: the glyph differs.
        box = screen.query_one("#force-relay", OnOffCheckbox)
        off = str(box.render())
        box.value = True
        await pilot.pause()
        assert str(box.render()) != off and "✔" in str(box.render())


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


async def test_form_settings_are_remembered_with_the_server(tmp_path: Path) -> None:
    recent = tmp_path / "recent.json"
    server = "http://127.0.0.1:9"  # nothing listens: the attempt fails at once

    def make() -> RdvApp:
        return make_app(AppConfig(embedded_server=False, server_url=server, recent_path=recent))

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
    app = make()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.connect_screen
        await pilot.pause()
        params = screen.params()
        assert (params.role, params.picker, params.wait_s, params.timeout_s) == (
            "accept",
            "wait-constant",
            2.5,
            30.0,
        )
        assert params.spaces == AddrSpace.LOOPBACK4


async def test_rdv_tui_presets_the_form_from_race_options() -> None:
    args = build_parser().parse_args(
        ["tui", "--spaces", "loopback4", "--wait", "0.5", "--timeout", "9"]
    )
    form = form_settings(args)
    app = make_app(AppConfig(embedded_server=False, server_url="http://127.0.0.1:9", form=form))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        params = app.connect_screen.params()
        assert params.spaces == AddrSpace.LOOPBACK4
        assert (params.picker, params.wait_s, params.timeout_s) == ("wait-constant", 0.5, 9.0)
    with pytest.raises(ValueError, match="--spaces"):
        form_settings(build_parser().parse_args(["tui", "--spaces", "moon"]))


async def test_loose_codes_are_refused() -> None:
    app = make_app(AppConfig(embedded_server=False, server_url="http://127.0.0.1:9"))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.connect_screen
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
            assert screen.query_one("#code", Input).value == code  # nothing lost
