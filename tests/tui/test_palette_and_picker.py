"""Command palette entries (recent servers and codes, screen actions) and the file picker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from textual.await_complete import AwaitComplete
from textual.command import CommandPalette
from textual.widgets import DirectoryTree, Input, Label

from rdv_tui.app import AppConfig, make_app
from rdv_tui.recent import Recent
from rdv_tui.widgets.files import FilePicker, FilesPane


async def test_recent_server_from_the_palette(tmp_path: Path) -> None:
    recent_file = tmp_path / "recent.json"
    recent_file.write_text(json.dumps({"servers": ["http://rdv.example.net:8080"], "codes": []}))
    app = make_app(AppConfig(embedded_server=False, recent_path=recent_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("connect")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"use server rdv.example")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.2)
        server = app.connect_screen.query_one("#server", Input)
        assert server.value == "http://rdv.example.net:8080"


async def test_palette_lists_screen_actions(tmp_path: Path) -> None:
    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("race")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Export race as JSONL", "Replay race", "Save screen as SVG", "Show server"):
            assert title in titles
        await app.switch_mode("session")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Send a file", "Accept offer", "Reject offer", "End session"} <= set(titles)
        # The screen already shown is not offered (as in the footer); the others are.
        assert "Show session" not in titles
        assert {"Show connect", "Show race", "Show server", "Show doctor"} <= set(titles)


def test_recent_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "recent.json"
    recent = Recent.load(path)
    for i in range(12):
        recent.remember(f"http://s{i}", f"{i}-a-b")
    recent.remember("http://s3")
    again = Recent.load(path)
    assert again.servers[0] == "http://s3" and len(again.servers) == 8
    assert again.codes[0] == "11-a-b"
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    assert Recent.load(path).servers == []  # a damaged file is an empty history


async def test_file_picker_sends_the_chosen_file(tmp_path: Path) -> None:
    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("session")
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FilePicker)
        sent: list[list[Path]] = []
        pane = app.session_screen.query_one(FilesPane)
        original = pane.post_message

        def spy(message: object) -> bool:
            if isinstance(message, FilesPane.SendPaths):
                sent.append(message.paths)
            return original(message)

        pane.post_message = spy
        await pilot.press("ctrl+o")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, FilePicker)
        picker.dismiss(tmp_path)
        await asyncio.sleep(0.1)
        await pilot.pause()
        assert sent == [[tmp_path]]


def folders_below(tmp_path: Path) -> Path:
    """``a/b`` under ``tmp_path`` and ``top.txt`` beside ``a``; returns the resolved top."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top.txt").write_text("from above")
    return tmp_path.resolve()


async def test_file_picker_climbs_above_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tree showed the current folder and nothing above it: a file in a parent folder
    could only be typed. ``backspace`` (or ``Up``) climbs; Enter on the file sends it."""
    top = folders_below(tmp_path)
    monkeypatch.chdir(top / "a" / "b")
    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("session")
        await pilot.pause()
        sent: list[Path | None] = []
        await pilot.press("ctrl+o")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, FilePicker)
        original = picker.dismiss

        def spy(result: Path | None = None) -> AwaitComplete:
            sent.append(result)
            return original(result)

        picker.dismiss = spy  # type: ignore[method-assign]
        await pilot.press("backspace")
        await pilot.click("#up")
        tree = picker.query_one(DirectoryTree)
        assert Path(tree.path) == top
        assert str(top) in str(picker.query_one("#where", Label).render())

        def shown_names() -> list[str]:
            return [str(child.label) for child in tree.root.children]

        async with asyncio.timeout(10):
            while "top.txt" not in shown_names():
                await pilot.pause(0.05)
        tree.focus()
        for _ in shown_names():  # folders first, then files: walk down to top.txt
            node = tree.cursor_node
            if node is not None and str(node.label) == "top.txt":
                break
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.pause()
        assert sent == [top / "top.txt"]
