"""An offered name keeps its end whole at any width (a real peer on loopback offers it)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from textual.widgets import Static

from rdv_core.session import SessionError
from rdv_tui.app import make_app
from rdv_tui.widgets.files import ROWS_UP_TO, Aggregate, OfferBar

from tests.tui.test_live import config, wait_for
from tests.tui.test_probe_files import dialed_session, screen_lines, session_sending

LONG = "a-very-long-file-name-for-the-offer-bar-" * 2 + "1.txt"


async def test_an_offered_long_name_is_never_cut_across_lines(tmp_path: Path) -> None:
    """At 60 columns the offer read ``…-offer-bar-1`` and, on the next line, ``.txt``: the
    name was cut to 60 characters whatever the width, then folded mid-name; at 80, beside
    the buttons, ``…-name-for-t``."""
    (tmp_path / LONG).write_text("a")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(60, 20)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        send = asyncio.get_running_loop().create_task(session.send_paths([tmp_path / LONG]))
        bar = app.session_screen.query_one(OfferBar)
        await wait_for(pilot, lambda: bar.pending == 1)
        for size in ((60, 20), (80, 24)):  # above the buttons, then beside them
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
            lines = [line.strip(" │") for line in screen_lines(app)]
            shown = [line for line in lines if "…" in line and "offer-bar" in line]
            assert shown and shown[0].endswith("-1.txt"), (size, lines)
            assert not any(line.startswith(".txt") for line in lines)
        send.cancel()
        with contextlib.suppress(asyncio.CancelledError, SessionError):
            await send
        await session.close()
        await conn.close()


async def test_the_aggregate_lines_keep_each_name_whole_at_60_columns(tmp_path: Path) -> None:
    """Past 20 files the pane sums a send up (``last: a, b, c``): each name was cut to 60
    characters whatever the width and then folded mid-name at 60 columns."""
    folder = tmp_path / "photos"
    folder.mkdir()
    stem = "holiday-photos-2026-summer-at-the-lake-with-everyone-"
    for i in range(ROWS_UP_TO + 1):
        (folder / f"{stem}{i:03d}.jpg").write_bytes(b"x")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(60, 20)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        await session_sending(app, pilot, folder, accept=True)
        aggregate = app.session_screen.query_one("#aggregate-in", Static)
        assert f"{ROWS_UP_TO + 1}/{ROWS_UP_TO + 1} files" in str(aggregate.render())
        lines = [line.strip(" │") for line in screen_lines(app)]
        names = [line for line in lines if "everyone-" in line and "verified" not in line]
        assert len(names) >= 2, lines  # the last files done, a line each
        # Each name shown ends with its number and extension on its own line.
        assert all(line.endswith((".jpg", ".jpg,")) for line in names), names


def test_the_aggregate_line_says_eta_once() -> None:
    """It read ``ETA ETA 0:02`` (format_eta says ``ETA`` itself), and ``· `` with nothing
    after it before the first file moved."""
    aggregate = Aggregate()
    aggregate.files_total, aggregate.bytes_total = 30, 3000
    line = aggregate.text("↓")
    assert "ETA ETA" not in line and "ETA -" in line
    assert not line.rstrip().endswith("·")
    aggregate.current = "photos/a.jpg"
    assert aggregate.text("↓").endswith("ETA - · photos/a.jpg")
