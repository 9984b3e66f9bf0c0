"""A narrow Connect form shows the code from its start, never only its end.

At 40 columns (the README's 40x12 layout) the code field is 11 cells wide and showed
``rra-planet`` for ``652125-sierra-planet``: select-on-focus and every new value put the
cursor, and so the view, at the end, and the user read a code nobody had given. (At 40
columns the code now has its row's width, the buttons under it: the test_small_terminals
case. A field too narrow for a code is left at 28 columns, 15 cells.) The real app with
its embedded server on loopback, at 28x12.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from rdv_tui.app import make_app

from tests.tui.test_live import config


def _shown(field: Input) -> str:
    return field.render_line(0).text.strip()


async def test_the_code_field_shows_the_codes_number(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with app.run_test(size=(28, 12)) as pilot:
        await pilot.pause(0.5)
        field = app.connect_screen.query_one("#code", Input)
        assert field.content_size.width < len(field.value)  # the case: it does not fit
        number = field.value.split("-")[0]
        assert field.has_focus and _shown(field).startswith(number), _shown(field)
        await pilot.press("ctrl+g")  # a fresh code, the field focused
        await pilot.pause(0.2)
        assert _shown(field).startswith(field.value.split("-")[0]), _shown(field)
        await pilot.press("tab")
        await pilot.press("ctrl+g")  # and with the focus elsewhere
        await pilot.pause(0.2)
        assert not field.has_focus
        assert _shown(field).startswith(field.value.split("-")[0]), _shown(field)
        field.focus()
        await pilot.pause(0.2)
        assert _shown(field).startswith(field.value.split("-")[0]), _shown(field)
        await pilot.press(*"7-tulip-orbit")  # still selected whole: typing replaces it
        assert field.value == "7-tulip-orbit"
        await pilot.press("ctrl+q")
