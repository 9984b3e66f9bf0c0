"""A pasted ``rdv receive --server URL CODE`` line fills the code and the server (a real
demo peer on loopback answers).

The Connect screen tells the other machine to run that line; pasted whole into the code
field of the app it read ``a code has no empty words (doubled '-')``.
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input, RadioButton

from rdv_tui.app import make_app
from rdv_tui.widgets.code_input import PastedCommand, command_in

from tests.tui.test_live import app_dials_a_demo_peer, config, wait_for

URL = "http://203.0.113.10:8080"


def test_the_commands_the_app_and_the_cli_print() -> None:
    code = "222117-castle-banjo"
    assert command_in(f"rdv receive --server {URL} {code}") == PastedCommand(code, URL, "dial")
    assert command_in(f"rdv receive --server {URL} --spaces loopback {code}\n") == (
        PastedCommand(code, URL, "dial")
    )
    assert command_in(f"rdv send --server {URL} --code {code} notes.txt") == (
        PastedCommand(code, URL, "accept")
    )
    assert command_in(f"$ rdv receive {code}") is None  # a prompt: not a command line
    assert command_in(f"/usr/bin/rdv receive --server={URL} --code={code}") == (
        PastedCommand(code, URL, "dial")
    )
    assert command_in(f"rdv frobnicate {code}") == PastedCommand(code)
    assert command_in(f"rdv tui --server {URL} (accept)") is None  # no code in it
    assert command_in(code) is None
    assert command_in("rdv receive 'unbalanced") is None


async def test_a_pasted_command_line_connects(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(100, 30)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        assert app.controller.embedded is not None
        screen = app.connect_screen
        code = screen.query_one("#code", Input).value  # the demo peer waits on it
        server = screen.query_one("#server", Input)
        url = server.value
        server.value = URL  # somewhere else: the paste puts it right
        field = screen.query_one("#code", Input)
        field.value = "9-other-words"
        accept = screen.query_one("#role-accept", RadioButton)
        accept.value = True  # the paste says: the other machine accepts, this one dials
        field.focus()
        field.post_message(events.Paste(f"rdv receive --server {url} --spaces loopback {code}"))
        await wait_for(pilot, lambda: field.value == code and server.value == url)
        await wait_for(pilot, lambda: not accept.value)
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.controller.session is not None, limit=30)
