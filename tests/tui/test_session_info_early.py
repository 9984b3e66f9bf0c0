"""A line of context for the session screen before it was ever shown.

The demo writes its hint into the session's chat once the session is up; a user who had
switched to the race or server screen (F3, F5) meanwhile left the session screen
uncomposed, and the hint's ``query_one(ChatPane)`` raised ``NoMatches``: the demo's
worker failed and took the app down (seen in tests/tui/test_header_units_wrap.py).
"""

from __future__ import annotations

from pathlib import Path

from rdv_tui.app import AppConfig, RdvApp
from rdv_tui.widgets.chat import ChatLog


async def test_an_info_line_before_the_session_screen_was_shown_waits_for_it(
    tmp_path: Path,
) -> None:
    app = RdvApp(AppConfig(demo_dir=None, download_dir=tmp_path / "dl"))
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.current_mode != "session"
        app.session_screen.show_info("hint for later")  # raised NoMatches here
        app.switch_mode("session")
        await pilot.pause()
        lines = app.session_screen.query_one(ChatLog).lines_added
        assert ("info", "hint for later") in lines, lines
        app.session_screen.show_info("and one now")
        assert ("info", "and one now") in app.session_screen.query_one(ChatLog).lines_added
