"""One file of a send cancelled from its row, the others delivered; a FIFO typed stays
(real peers on loopback).

A real dialing :class:`Session` receives what the app sends through its embedded server;
the user sends three files, clicks the wrong one's row and presses ``x``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from pathlib import Path

from textual.widgets import Input

from rdv_core import events as ev
from rdv_core.session import CANCELLED_BY_PEER, IncomingOffer, generate_code
from rdv_tui.app import make_app
from rdv_tui.widgets.files import FilesPane, OfferBar

from tests.proc_support import kill_left
from tests.tui.test_live import config, dial_the_app, fill_connect_form, wait_for

ROOT = Path(__file__).resolve().parents[2]


async def test_the_wrong_file_is_cancelled_and_the_others_arrive(tmp_path: Path) -> None:
    """Before, only ending the session stopped a file (and every other one with it)."""
    names = ["a.txt", "wrong.bin", "c.txt"]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(bytes([i]) * (1000 + i))
    (tmp_path / "peer").mkdir()
    peer_events: list[ev.Event] = []
    go = asyncio.Event()

    async def accept_later(offer: IncomingOffer) -> bool:
        await go.wait()  # the peer decides after the user cancelled
        return True

    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        session, conn = await dial_the_app(
            app,
            pilot,
            on_offer=accept_later,
            download_dir=tmp_path / "peer",
            on_event=peer_events.append,
        )
        try:
            screen = app.session_screen
            await wait_for(pilot, lambda: bool(screen.query("#send-path")))
            field = screen.query_one("#send-path", Input)
            # A FIFO typed first: it cleared the field (the text lost), then failed.
            fifo = tmp_path / "pipe"
            os.mkfifo(fifo)  # nobody writes to it: a send that opened it would hang
            field.value = str(fifo)
            field.focus()
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert field.value == str(fifo)
            assert [n.message for n in app._notifications if n.title == "Send"] == [
                f"cannot send {fifo}: it is a named pipe (FIFO), not a file: only regular "
                "files and folders are sent (to stream a pipe's bytes, use rdv dial / rdv accept)"
            ]
            field.value = " ".join(shlex.quote(str(tmp_path / n)) for n in names)
            field.focus()
            await pilot.press("enter")
            files = screen.query_one(FilesPane)
            await wait_for(pilot, lambda: files.row("out", 2) is not None)
            row = files.row("out", 2)
            assert row is not None
            await pilot.pause(0.1)  # laid out, to be clicked
            await pilot.click(f"#{row.id}", offset=(2, 0))  # a click focuses the row
            assert app.focused is row
            await pilot.press("x")
            await wait_for(pilot, lambda: row.settled)
            assert row.status_text == "✗ cancelled by you"
            go.set()
            await wait_for(pilot, lambda: files.aggregates["out"].files_ok == 2)
            assert sorted(p.name for p in (tmp_path / "peer").iterdir()) == ["a.txt", "c.txt"]
            theirs = [e for e in peer_events if isinstance(e, ev.FileFailed)]
            assert [(e.name, e.reason, e.cancelled) for e in theirs] == [
                ("wrong.bin", CANCELLED_BY_PEER, True)
            ]
            aggregate = files.aggregates["out"]
            assert (aggregate.files_failed, aggregate.files_cancelled) == (0, 1)
            assert not [n for n in app._notifications if n.title == "Send failed"]
            assert not session.closed
        finally:
            await session.close()
            await conn.close()


async def test_the_app_cancels_a_file_it_receives_from_rdv_send(tmp_path: Path) -> None:
    """The receiving side's cancel: a real ``rdv send`` process offers two files, is
    stopped (SIGSTOP: a slow sender, deterministic) once it offered, the user accepts
    and cancels the second; resumed, it sends the first only and counts the other apart."""
    (tmp_path / "keep.txt").write_text("wanted")
    (tmp_path / "drop.txt").write_text("not wanted")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        app.controller.session_switch_delay = 0.0
        await pilot.press("f2")
        code = generate_code()
        await fill_connect_form(app, pilot, code)
        app.connect_screen.query_one("#role-accept").value = True  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        sender = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rdv_tui",
            "send",
            "--server",
            app.controller.embedded.url,
            "--code",
            code,
            str(tmp_path / "keep.txt"),
            str(tmp_path / "drop.txt"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            screen = app.session_screen
            await wait_for(pilot, lambda: bool(screen.query("#offer-text")), limit=30)
            bar = screen.query_one(OfferBar)
            await wait_for(pilot, lambda: bar.pending == 1, limit=30)
            sender.send_signal(signal.SIGSTOP)  # nothing moves until SIGCONT
            bar.answer(True)
            files = screen.query_one(FilesPane)
            await wait_for(
                pilot, lambda: (r := files.row("in", 2)) is not None and r.status_text == "accepted"
            )
            row = files.row("in", 2)
            assert row is not None
            row.focus()
            await pilot.press("x")
            await wait_for(pilot, lambda: row.settled)
            assert row.status_text == "✗ cancelled by you"
            sender.send_signal(signal.SIGCONT)
            async with asyncio.timeout(30):
                _, err = await sender.communicate()
            said = err.decode()
            assert "cancelled by the peer: drop.txt" in said
            assert "1 of 2 files verified" in said and "1 cancelled" in said, said
            # Its last line: not "1 file failed; the first: drop.txt (cancelled by ...)".
            assert said.endswith("rdv send: the receiver cancelled 1 file (drop.txt)\n"), said
            assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["keep.txt"]
            assert files.aggregates["in"].files_cancelled == 1
        finally:
            with contextlib.suppress(ProcessLookupError):
                sender.send_signal(signal.SIGCONT)
            await kill_left(sender)
            await app.controller.close_connection()
