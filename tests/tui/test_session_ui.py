"""The Session screen across sessions, with long chat lines, at 80x24 (issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input

from rdv_core import events as ev
from rdv_core.session import MAX_CHAT_BYTES
from rdv_tui.app import AppConfig, make_app
from rdv_tui.screens.session import SessionScreen
from rdv_tui.widgets.chat import ChatLog, ChatPane
from rdv_tui.widgets.files import FilesPane

DIGEST_A, DIGEST_B = "aa" * 32, "bb" * 32


def session_events(note: str, big: str) -> tuple[list[ev.Event], list[ev.Event]]:
    """Two sessions of one app run; transfer ids restart at 1 in the second."""
    first: list[ev.Event] = [
        ev.SessionEstablished(0.0, False, "127.0.0.1:4000", 1),
        ev.FileOffered(0.1, 1, "out", note, 3),
        ev.FileAccepted(0.2, 1, "out", 0),
        ev.FileCompleted(0.3, 1, "out", note, 3, DIGEST_A),
        ev.SessionClosed(0.4, "closed by peer"),
    ]
    second: list[ev.Event] = [
        ev.SessionEstablished(0.0, False, "127.0.0.1:4001", 1),
        ev.FileOffered(0.1, 1, "out", big, 50_000_000),
        ev.FileAccepted(0.2, 1, "out", 0),
        ev.FileProgress(0.3, 1, "out", 1_000_000, 50_000_000, 5e6),
    ]
    return first, second


async def test_rows_per_session_chat_limit_and_rewrap(tmp_path: Path) -> None:
    app = make_app(AppConfig(embedded_server=False, download_dir=tmp_path))
    sent: list[str] = []
    async with app.run_test(size=(160, 36)) as pilot:
        await app.switch_mode("session")
        await pilot.pause()
        screen = app.session_screen
        # Transfer ids restart at 1 in every session: rows are keyed by session too.
        first, second = session_events("note.txt", "big50.bin")
        for event in first:
            screen.feed(event)
        await pilot.pause()
        for event in second:
            screen.feed(event)
        await pilot.pause()
        files = screen.query_one(FilesPane)
        old, new = files.row("out", 1, session=1), files.row("out", 1, session=2)
        assert old is not None and new is not None and old is not new
        assert "note.txt" in str(old._w_name.render())
        assert old.status_text.startswith("✔ verified aaaaaaaa")
        assert "big50.bin" in str(new._w_name.render())
        assert "verified" not in new.status_text and "MiB/s" in new.status_text
        assert screen.bytes_out == 3 + 1_000_000  # counted per session too

        # A chat line over 16 KiB stays in the input, with the reason.
        app.controller.send_chat = sent.append  # type: ignore[method-assign,assignment]
        field = screen.query_one("#chat-input", Input)
        long_line = "é" * (MAX_CHAT_BYTES // 2 + 1)  # under the limit in characters, over in bytes
        field.value = long_line
        field.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert field.value == long_line  # not lost
        assert not sent
        assert any("at most 16.0 KiB" in n.message for n in app._notifications)
        field.value = "fits"
        await pilot.press("enter")
        await pilot.pause()
        assert field.value == "" and sent == ["fits"]

        log = screen.query_one(ChatLog)
        pane = screen.query_one(ChatPane)
        pane.add("peer", "word " * 60)
        await pilot.pause()
        wide = len(log.lines)
        await pilot.resize_terminal(110, 36)  # narrower chat pane, still side by side
        await pilot.pause()
        assert len(log.lines) > wide  # wrapped again at the narrower width
        assert max(strip.cell_length for strip in log.lines) <= log.scrollable_content_region.width


async def test_session_screen_at_80x24_is_usable() -> None:
    # A long folder of a fixed length, not pytest's tmp_path: its length depends on the runner
    # (pytest-xdist adds ``popen-gw0/``, and the line took three rows). Two rows at 80 columns;
    # the screen only shows it (nothing is received), so nothing is created there.
    folder = Path("/srv/rdv/" + "a-long-folder-name-" * 3 + "downloads")
    app = make_app(AppConfig(embedded_server=False, download_dir=folder))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("session")
        screen: SessionScreen = app.session_screen
        first, second = session_events("a-rather-long-file-name-of-a-note.txt", "big50.bin")
        for event in first + second:
            screen.feed(event)
        await pilot.pause()
        path_box = screen.query_one("#send-path", Input)
        assert path_box.region.width >= 30
        where = screen.query_one("#download-dir")
        # Two rows for a long folder: at one row high a long path was cut off whole
        # (tests/tui/test_probe_session.py).
        assert where.region.height == 2
        assert str(folder) in str(where.render()).replace("\n", "")
        assert app.screen.region.contains_region(where.region)
        row = screen.query_one(FilesPane).row("out", 1, session=1)
        assert row is not None
        assert "a-rather-long-file-name-of-a-note.txt" in str(row._w_name.render())
        assert row._w_name.region.width > len("↑ a-rather-long-file-name-of-a-note.txt (3 B)")
    assert not await asyncio.to_thread(folder.exists)


async def test_a_chatty_peer_cannot_grow_the_chat_without_end(tmp_path: Path) -> None:
    app = make_app(AppConfig(embedded_server=False, download_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("session")
        log = app.session_screen.query_one(ChatLog)
        for i in range(6000):
            log.add("peer", f"line {i}")
        await pilot.pause()
        kept = log.lines_added
        assert len(kept) == 5000 and kept[0] == ("peer", "line 1000")
        assert kept[-1] == ("peer", "line 5999")
        assert len(log.lines) <= 5000
