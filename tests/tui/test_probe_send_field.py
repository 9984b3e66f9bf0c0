"""A download folder that cannot take files says what to do (real peers on loopback).

A real dialing :class:`Session` and the app, through the app's embedded server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static

from rdv_tui.app import make_app
from rdv_tui.receive_folder import FOLDER_HINT
from rdv_tui.widgets.files import OfferBar

from tests.test_session_disk import _remount, needs_root, tmpfs
from tests.tui.test_live import config, dial_the_app, wait_for


@needs_root
async def test_a_read_only_download_folder_says_how_to_choose_another(tmp_path: Path) -> None:
    """The reason was right (read-only file system) and no way out was said."""
    (tmp_path / "f.txt").write_text("x")
    app = make_app(config(tmp_path))
    with tmpfs(tmp_path / "inbox", "1m") as inbox:
        _remount(inbox, "ro")
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.controller.embedded is not None)
            app.controller.session_switch_delay = 0.0
            await pilot.press("f2")
            session, conn = await dial_the_app(app, pilot)
            try:
                screen = app.session_screen
                await wait_for(pilot, lambda: bool(screen.query("#offer-text")))
                send = asyncio.get_running_loop().create_task(
                    session.send_paths([tmp_path / "f.txt"])
                )
                bar = screen.query_one(OfferBar)
                await wait_for(pilot, lambda: bar.pending == 1)
                bar.answer(True)
                async with asyncio.timeout(10):
                    await asyncio.gather(send, return_exceptions=True)
                await pilot.pause(0.1)
                [note] = [n for n in app._notifications if n.title.startswith("Cannot store")]
                assert "read-only file system" in note.message and FOLDER_HINT in note.message
                line = screen.query_one("#download-dir", Static)
                assert "--download-dir DIR" in str(line.render())
            finally:
                await session.close()
                await conn.close()
