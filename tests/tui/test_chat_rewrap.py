"""A resize wraps again only the chat lines that the scrollback holds.

Every message kept (5000, of up to 16 KiB each) was wrapped again on each resize: after a
chat with long pastes, making the terminal narrower froze the app for about a minute.
"""

from __future__ import annotations

from rich.console import RenderableType
from textual.app import App, ComposeResult

from rdv_tui.widgets.chat import SCROLLBACK, ChatLog, rows_at_least


class CountingLog(ChatLog):
    """A ChatLog that counts what it wraps (writes)."""

    writes = 0

    def write(self, content: RenderableType | object, *args: object, **kwargs: object) -> ChatLog:  # type: ignore[override]
        self.writes += 1
        return super().write(content, *args, **kwargs)  # type: ignore[arg-type]


class ChatApp(App[None]):
    def compose(self) -> ComposeResult:
        yield CountingLog(id="log", clock=lambda: "12:00:00")


def test_rows_at_least() -> None:
    assert rows_at_least("", 10) == 1
    assert rows_at_least("x" * 10, 10) == 1
    assert rows_at_least("x" * 11, 10) == 2
    assert rows_at_least("a\n\nb", 10) == 3
    assert rows_at_least("abc", 0) == 3


async def test_a_resize_wraps_only_what_the_scrollback_shows() -> None:
    app = ChatApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(CountingLog)
        big = 16 * 1024
        for number in range(300):  # 4.8 MiB of chat: each line ~200 rows at 100 columns
            log.add("peer", f"#{number} " + "word " * (big // 5))
        log.add("you", "the last line")
        await pilot.pause()
        assert len(log.lines) == SCROLLBACK
        log.writes = 0
        await pilot.resize_terminal(60, 30)
        await pilot.pause()
        # 5000 rows at 60 columns hold the newest ~15 big lines, not all 301.
        assert 0 < log.writes <= 30
        assert len(log.lines) == SCROLLBACK
        assert "the last line" in log.lines[-1].text
        assert len(log.lines_added) == 301  # what was said is all still known


async def test_short_lines_keep_the_whole_scrollback_across_a_resize() -> None:
    app = ChatApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(CountingLog)
        for number in range(SCROLLBACK):
            log.add("peer", f"line {number}")
        await pilot.pause()
        await pilot.resize_terminal(60, 30)
        await pilot.pause()
        assert len(log.lines) == SCROLLBACK
        assert "line 0" in log.lines[0].text and f"line {SCROLLBACK - 1}" in log.lines[-1].text


async def test_a_theme_change_recolours_the_lines_already_there() -> None:
    """After a switch to a light theme the old lines kept the dark theme's light grey."""
    app = ChatApp()
    async with app.run_test(size=(80, 20)) as pilot:
        app.theme = "textual-dark"
        log = app.query_one(CountingLog)
        log.add("info", "session up")
        await pilot.pause()

        def stamp_colour() -> object:
            segment = next(s for s in log.lines[0] if s.text.strip().startswith("12:00"))
            assert segment.style is not None and segment.style.color is not None
            return segment.style.color.triplet

        dark = stamp_colour()
        app.theme = "textual-light"
        await pilot.pause()
        assert stamp_colour() != dark
        assert "session up" in log.lines[0].text
