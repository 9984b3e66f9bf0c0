"""What the app leaves out of a send is said (real peers on loopback, the embedded server).

A real dialing :class:`Session` accepts everything; the user types folder paths into the
files pane.
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.widgets import Input

from rdv_core.session import IncomingOffer
from rdv_tui.app import make_app
from rdv_tui.widgets.files import FilesPane

from tests.tui.test_live import config, dial_the_app, wait_for


async def accept_all(offer: IncomingOffer) -> bool:
    return True


async def test_an_empty_folder_and_names_left_out_are_said(tmp_path: Path) -> None:
    """An empty folder cleared the path field and nothing happened: no row, no word. A
    folder with one name the receiver refuses (``aux.txt``) was not sent at all
    (``Send failed``), its good files with it; its symlinks were dropped unsaid."""
    (tmp_path / "empty").mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "good.txt").write_text("good")
    (mixed / "aux.txt").write_text("a Windows device name")
    os.symlink(tmp_path / "empty", mixed / "link")
    (tmp_path / "peer").mkdir()
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        session, conn = await dial_the_app(
            app, pilot, on_offer=accept_all, download_dir=tmp_path / "peer"
        )
        try:
            screen = app.session_screen
            await wait_for(pilot, lambda: bool(screen.query("#send-path")))
            field = screen.query_one("#send-path", Input)

            def said() -> list[str]:
                return [n.message for n in app._notifications if n.title == "Send"]

            field.value = str(tmp_path / "empty")
            field.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: bool(said()))
            assert said() == ["nothing to send: 1 empty folder (only regular files are sent)"]

            field.value = str(mixed)
            await pilot.press("enter")
            files = screen.query_one(FilesPane)
            await wait_for(pilot, lambda: files.aggregates["out"].files_ok == 1)
            assert (tmp_path / "peer" / "mixed" / "good.txt").read_text() == "good"
            note = said()[-1]
            assert note.startswith("not sent: 1 symlink (only regular files are sent)")
            assert "mixed/aux.txt" in note and "rename" in note
        finally:
            await session.close()
            await conn.close()
