"""Past 20 files (aggregate mode) the moving file keeps a row that ``x`` cancels, and ``x``
twice on the aggregate line cancels the rest (real peers on loopback).

Stop 37's per-file cancel had no row to act on past 20 files: a user sending 10,000 files
could stop neither the one under way nor the rest but by ending the session. The app
sends a folder to a real ``rdv receive --yes`` process, stopped (SIGSTOP: a slow link,
deterministic) once the first bytes are through; resumed after the user's cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from textual.widgets import Input

from rdv_core.session import generate_code
from rdv_tui.app import make_app
from rdv_tui.widgets.files import ROWS_UP_TO, FilesPane, TransferRow

from tests.proc_support import kill_left
from tests.tui.test_live import config, fill_connect_form, wait_for

ROOT = Path(__file__).resolve().parents[2]

FILES = ROWS_UP_TO + 5
SIZE = 64 << 20  # streamed (not bundled); sparse, so cheap to make


async def test_the_moving_file_and_the_rest_are_cancelled(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(FILES):
        fd = os.open(folder / f"f{i:02d}", os.O_CREAT | os.O_WRONLY, 0o644)
        os.truncate(fd, SIZE)
        os.close(fd)
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        code = generate_code()
        await fill_connect_form(app, pilot, code)
        receiver = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rdv_tui",
            "receive",
            "--server",
            app.controller.embedded.url,
            "--yes",
            "--dir",
            str(tmp_path / "peer"),
            code,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        await pilot.press("ctrl+r")
        try:
            screen = app.session_screen
            await wait_for(pilot, lambda: bool(screen.query("#send-path")), limit=30)
            files = screen.query_one(FilesPane)
            await wait_for(pilot, lambda: files.open, limit=30)
            field = screen.query_one("#send-path", Input)
            field.value = str(folder)
            # What Enter does, without Pilot's wait for the app to go idle (it is busy
            # sending for as long as the files move).
            await field.action_submit()
            out = files.aggregates["out"]
            # Stopped at the first bytes acked: the sender is at most its buffers ahead,
            # inside the first file (a file all sent, being checked, cannot be cancelled).
            await wait_for(pilot, lambda: any(out.moving.values()), limit=10)
            receiver.send_signal(signal.SIGSTOP)  # nothing more is read until SIGCONT
            seen: list[tuple[int, int]] = []

            def stalled() -> bool:  # what the peer had read is through: nothing moves
                seen.append((len(out.moving), out.files_done))
                return len(seen) > 10 and len(set(seen[-10:])) == 1

            await wait_for(pilot, stalled)
            assert out.files_done < FILES and out.files_total == FILES

            # The moving file's row, though the list is past ROWS_UP_TO files (waited for,
            # not a fixed pause: at once on an idle machine).
            def moving_rows() -> list[TransferRow]:
                return [r for r in files.query(TransferRow) if not r.settled]

            with contextlib.suppress(TimeoutError):
                await wait_for(pilot, lambda: len(moving_rows()) == 1, limit=2)
            rows = moving_rows()
            assert len(rows) == 1, "no row to cancel the moving file from"
            row = rows[0]
            row.focus()
            await pilot.press("x")
            await wait_for(pilot, lambda: row.settled)
            assert row.status_text == "✗ cancelled by you"
            assert out.files_cancelled == 1
            # x on the aggregate line: asked first, done when pressed again.
            line = screen.query_one("#aggregate-out")
            line.focus()
            await pilot.press("x")
            await pilot.pause(0.1)
            left = FILES - out.files_done
            asked = [n.message for n in app._notifications if n.title == "Cancel all"]
            assert asked and asked[-1].startswith(f"x again within 5 s cancels the {left} files")
            assert out.files_cancelled == 1  # nothing cancelled yet
            await pilot.press("x")
            await wait_for(pilot, lambda: out.files_done == FILES)
            said = [n.message for n in app._notifications if n.title == "Cancel"]
            assert said[-1] == f"cancelled {left} files", said
            assert out.files_cancelled == 1 + left
            receiver.send_signal(signal.SIGCONT)
            await pilot.pause(0.3)
            # No "Send failed" for files a user stopped, no rows of "cancelled" (the
            # line counts them), and the session goes on.
            assert not [n for n in app._notifications if n.title == "Send failed"]
            assert len(files.query(".-failed")) <= 2  # the first row cancelled, and the next
            assert files.open
        finally:
            with contextlib.suppress(ProcessLookupError):
                receiver.send_signal(signal.SIGCONT)
            await app.controller.close_connection()
            await kill_left(receiver)
