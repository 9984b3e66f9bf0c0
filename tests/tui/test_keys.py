"""Every key the footer shows works with the focus in any widget of the screen (issue 16).

``ctrl+w`` (End session) did nothing while the chat line had the focus: Textual's
Input binds it (delete a word), and the footer then hid the key. Here every key a
screen's footer offers is resolved with the focus in each of its focusable widgets
the way Textual dispatches a key (priority bindings from the app down, then the
bindings from the focused widget up), and must reach the screen's or the app's
action, not the widget's. ``run_action`` is replaced by a recorder, so a key only says
where it went and changes nothing. One real key press checks the recorder's view.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from rdv_tui.app import AppConfig, RdvApp, make_app

MODES = ("connect", "race", "session", "server", "doctor")


def footer_keys(screen: Screen[Any]) -> dict[str, str]:
    """Key → action of every binding the footer shows (with no widget focused)."""
    screen.set_focus(None)
    return {
        key: active.binding.action
        for key, active in screen.active_bindings.items()
        if active.binding.show and active.enabled
    }


async def test_every_footer_key_works_with_focus_anywhere_and_says_one_thing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(AppConfig(embedded_server=False, server_url="http://127.0.0.1:9"))
    calls: list[tuple[str, DOMNode | None]] = []

    async def record(action: str, default_namespace: DOMNode | None = None) -> bool:
        calls.append((action, default_namespace))
        return True

    async with app.run_test(size=(160, 48)) as pilot:
        assert isinstance(app, RdvApp)
        missed, checked = [], 0
        for mode in MODES:
            await app.switch_mode(mode)
            app.race_screen.running = mode == "race"  # the cancel key shows during an attempt
            await pilot.pause()
            screen = app.screen
            keys = footer_keys(screen)
            assert len(keys) >= 3, (mode, keys)
            # One label per action: the Connect footer read "^r Connect  f2 Connect".
            labels = [screen.active_bindings[key].binding.description for key in keys]
            assert len(labels) == len(set(labels)), (mode, labels)
            monkeypatch.setattr(app, "run_action", record)
            # One widget of each class: bindings belong to the class, and every focus
            # change redraws the footer (all 20 fields of the form took 10 s more).
            kinds: dict[type[Widget], Widget] = {}
            for each in screen.focus_chain:
                kinds.setdefault(type(each), each)
            for widget in [None, *kinds.values()]:
                screen.set_focus(widget)
                for key, action in keys.items():
                    calls.clear()
                    if not await app._check_bindings(key, priority=True):
                        await app._check_bindings(key)
                    checked += 1
                    if calls[:1] not in ([(action, screen)], [(action, app)]):
                        missed.append((mode, key, type(widget).__name__, calls[:]))
            monkeypatch.undo()
        assert not missed, missed
        assert checked > 50

        # The real thing once: ctrl+l with the focus in the chat line ends the session.
        await app.switch_mode("session")
        app.session_screen.query_one("#chat-input", Input).focus()
        await pilot.pause()
        monkeypatch.setattr(app, "run_action", record)
        calls.clear()
        await pilot.press("ctrl+l")
        assert ("close_session", app.session_screen) in calls, calls
        monkeypatch.undo()

        # The palette offers one way to save the screen (ours, into the export folder).
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Save screen as SVG" in titles
        assert "Screenshot" not in titles
