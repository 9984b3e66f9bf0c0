"""What the app shows of an offer it receives (real peers on loopback, one session):
look-alike names told apart, and a download folder that cannot take files says what to do.

A real dialing :class:`Session` offers the app a folder holding ``café.txt`` twice:
once with ``é`` as one character (NFC), once as ``e`` and a combining accent (NFD),
two names (two files on disk) that the offer bar and the rows showed identical. The
app's download folder is a read-only tmpfs: the reason was right ("read-only file
system") and no way out was said.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static

from rdv_tui.app import make_app
from rdv_tui.receive_folder import FOLDER_HINT
from rdv_tui.widgets.files import FilesPane, OfferBar, TransferRow

from tests.test_session_disk import _remount, needs_root, tmpfs
from tests.tui.test_live import config, dial_the_app, wait_for

NFC = "caf\u00e9.txt"
NFD = "cafe\u0301.txt"


@needs_root
async def test_look_alikes_shown_apart_and_a_read_only_folder_says_what_to_do(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / NFC).write_text("one")
    (folder / NFD).write_text("two")
    app = make_app(config(tmp_path))
    with tmpfs(tmp_path / "inbox", "1m") as inbox:
        _remount(inbox, "ro")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: app.controller.embedded is not None)
            app.controller.session_switch_delay = 0.0
            await pilot.press("f2")
            session, conn = await dial_the_app(app, pilot)
            try:
                screen = app.session_screen
                await wait_for(pilot, lambda: bool(screen.query("#offer-text")))
                send = asyncio.get_running_loop().create_task(session.send_paths([folder]))
                bar = screen.query_one(OfferBar)
                await wait_for(pilot, lambda: bar.pending == 1)
                text = str(screen.query_one("#offer-text").render())
                assert f"2 names look alike (two/cafe\\u0301.txt and two/{NFC}); " in text
                bar.answer(True)
                async with asyncio.timeout(10):
                    await asyncio.gather(send, return_exceptions=True)
                await pilot.pause(0.1)
                rows = screen.query_one(FilesPane).query(TransferRow)
                names = sorted(str(row._w_name.render()) for row in rows)
                assert names == ["↓ two/cafe\\u0301.txt (3 B)", f"↓ two/{NFC} (3 B)"]
                [note] = [n for n in app._notifications if n.title.startswith("Cannot store")]
                assert "read-only file system" in note.message and FOLDER_HINT in note.message
                line = screen.query_one("#download-dir", Static)
                assert "--download-dir DIR" in str(line.render())
            finally:
                await session.close()
                await conn.close()
