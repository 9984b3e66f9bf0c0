"""Names alike on screen, different on disk (NFC and NFD), are shown apart (real peers).

A real dialing :class:`Session` offers the app a folder holding ``café.txt`` twice:
once with ``é`` as one character (NFC), once as ``e`` and a combining accent (NFD).
Both arrive as two files; the offer bar and the rows showed two identical names.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rdv_tui.app import make_app
from rdv_tui.widgets.files import FilesPane, OfferBar, TransferRow

from tests.tui.test_live import a_peer_dials_the_app, config, wait_for

NFC = "caf\u00e9.txt"
NFD = "cafe\u0301.txt"


async def test_look_alike_names_are_shown_apart(tmp_path: Path) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / NFC).write_text("one")
    (folder / NFD).write_text("two")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        async with a_peer_dials_the_app(app, pilot) as session:
            screen = app.session_screen
            await wait_for(pilot, lambda: bool(screen.query("#offer-text")))
            send = asyncio.get_running_loop().create_task(session.send_paths([folder]))
            bar = screen.query_one(OfferBar)
            await wait_for(pilot, lambda: bar.pending == 1)
            text = str(screen.query_one("#offer-text").render())
            assert f"2 names look alike (two/cafe\\u0301.txt and two/{NFC}); " in text
            bar.answer(True)
            async with asyncio.timeout(10):
                assert all(r.ok for r in await send)
            files = screen.query_one(FilesPane)
            names = sorted(str(row._w_name.render()) for row in files.query(TransferRow))
            assert names == ["↓ two/cafe\\u0301.txt (3 B)", f"↓ two/{NFC} (3 B)"]
            assert len(list((tmp_path / "inbox" / "two").iterdir())) == 2
