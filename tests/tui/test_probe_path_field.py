"""The send field takes any text without dying (the app's embedded server up, as at start)."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input

from rdv_tui.app import make_app

from tests.tui.test_live import config, wait_for


async def test_a_paste_too_long_for_a_path_is_a_message_not_a_crash(tmp_path: Path) -> None:
    """A paragraph pasted into the path field by mistake (5,000 characters, or one name
    over 255 bytes): ``Enter`` ended the app with ``OSError: File name too long``; and
    ``~bob/notes.txt`` of an unknown user with ``RuntimeError``."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        await pilot.press("f4")
        await wait_for(pilot, lambda: bool(app.session_screen.query("#send-path")))
        field = app.session_screen.query_one("#send-path", Input)
        for text in ("x" * 5000, f"{tmp_path}/{'y' * 300}.txt", "~nobody-here-rdv/notes.txt"):
            field.focus()
            field.value = ""
            field.post_message(events.Paste(text))
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert app.is_running
            messages = [n.message for n in app._notifications]
            assert messages and messages[-1].startswith("no such file or folder: "), messages
            assert len(messages[-1]) < 200  # the end of the text, not all of it
            assert field.value == text  # kept, to fix
