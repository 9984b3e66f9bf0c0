"""The files pane past 20 files, and across sessions of one app run (real peers on loopback).

A real dialing :class:`Session` (loopback spaces, the app's embedded server) sends
folders to the app, which accepts; the user answers the offers with the mouse.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets._footer import FooterKey

from rdv_core import events as ev
from rdv_core.client import Conn
from rdv_core.session import Session, SessionError, TransferRejected
from rdv_tui.app import RdvApp, make_app
from rdv_tui.widgets.files import ROWS_UP_TO, FilesPane, OfferBar, TransferRow
from rdv_tui.widgets.link_strip import LinkStrip

from tests.tui.test_live import a_peer_dials_the_app, config, dial_the_app, wait_for


def folder_of(path: Path, count: int) -> Path:
    """A folder of ``count`` small files."""
    path.mkdir(parents=True)
    for i in range(count):
        (path / f"f{i:03d}").write_bytes(b"x" * 100)
    return path


async def session_sending(
    app: RdvApp, pilot: Pilot[int], folder: Path, *, accept: bool
) -> list[TransferRow]:
    """One session: the peer dials, offers ``folder``; the user clicks Accept or Reject.

    Returns this session's rows once the send is over and the session closed.
    """
    assert app.controller.embedded is not None
    if app.current_mode != "connect":
        await pilot.press("f2")
    async with a_peer_dials_the_app(app, pilot) as session:
        screen = app.session_screen
        await wait_for(
            pilot,
            lambda: app.controller.session is not None and bool(screen.query("#offer-text")),
        )
        files = screen.query_one(FilesPane)
        number = files.session
        send = asyncio.get_running_loop().create_task(session.send_paths([folder]))
        bar = screen.query_one(OfferBar)
        await wait_for(pilot, lambda: bar.pending == 1)
        await pilot.pause(0.1)  # let the bar's layout settle before clicking it
        assert await pilot.click("#offer-accept" if accept else "#offer-reject")
        async with asyncio.timeout(30):
            if accept:
                assert all(result.ok for result in await send)
            else:
                with contextlib.suppress(TransferRejected):
                    await send
        await pilot.pause(0.5)  # the last events and the redraw timer
        assert app.is_running, "the app died"
        prefix = f"t-{number}-"
        return [
            row
            for row in screen.query(TransferRow)
            if row.id is not None and row.id.startswith(prefix)
        ]


async def test_a_send_past_twenty_files_leaves_no_row_saying_offered(tmp_path: Path) -> None:
    """25 files, all verified: the rows of the first 20 said ``offered`` 0 % for good."""
    folder = folder_of(tmp_path / "many", ROWS_UP_TO + 5)
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        rows = await session_sending(app, pilot, folder, accept=True)
        files = app.session_screen.query_one(FilesPane)
        assert files.aggregates["in"].files_ok == ROWS_UP_TO + 5
        stale = [row.id for row in rows if not (row.has_class("-done") or row.has_class("-failed"))]
        assert not stale, f"rows that will never move: {stale}"


async def test_later_sessions_count_their_own_files(tmp_path: Path) -> None:
    """Two rejected big sends, then a small one, in three sessions of one run.

    The second rejection crashed the app (DuplicateIds: the failure rows had no session
    in their id), and the third send, 10 files, was summed up with the 50 before it
    into an aggregate line instead of showing its 10 rows.
    """
    big = folder_of(tmp_path / "big", ROWS_UP_TO + 5)
    small = folder_of(tmp_path / "small", 10)
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        for _ in range(2):
            rows = await session_sending(app, pilot, big, accept=False)
            assert rows and all(row.has_class("-failed") for row in rows)
            assert all("declined" in row.status_text for row in rows)
            # Rows of rejected files name them (they read "↓  (0 B)").
            assert all("big/f0" in str(row._w_name.render()) for row in rows)
        rows = await session_sending(app, pilot, small, accept=True)
        assert len(rows) == 10
        assert all(row.status_text.startswith("✔ verified") for row in rows)
        assert app.session_screen.query_one(FilesPane).aggregates["in"].files_total == 10


async def dialed_session(app: RdvApp, pilot: Pilot[int]) -> tuple[Session, Conn]:
    """The app accepts, a real dialing Session on loopback; returns (session, conn)."""
    assert app.controller.embedded is not None
    if app.current_mode != "connect":
        await pilot.press("f2")
    session, conn = await dial_the_app(app, pilot)
    screen = app.session_screen
    await wait_for(
        pilot, lambda: app.controller.session is not None and bool(screen.query("#offer-text"))
    )
    return session, conn


async def test_a_peer_gone_with_an_offer_unanswered_leaves_nothing_to_answer(
    tmp_path: Path,
) -> None:
    """The peer offers a file and vanishes before the user answers.

    The offer bar kept Accept / Reject (and the footer ``^t`` / ``^n``) for a session
    that was over, and the file's row said ``offered`` for good.
    """
    note = tmp_path / "note.txt"
    note.write_bytes(b"hello")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        send = asyncio.get_running_loop().create_task(session.send_paths([note]))
        bar = app.session_screen.query_one(OfferBar)
        await wait_for(pilot, lambda: bar.pending == 1)
        conn.writer.transport.abort()  # the peer is gone
        await wait_for(pilot, lambda: app.session_screen.query_one(LinkStrip).closed != "")
        await pilot.pause(0.2)
        assert bar.pending == 0 and not bar.has_class("-pending")
        shown = [key.key for key in app.screen.query(FooterKey)]
        assert "ctrl+t" not in shown and "ctrl+n" not in shown
        row = app.session_screen.query_one(FilesPane).row("in", 1)
        assert row is not None and row.has_class("-failed")
        assert row.status_text.startswith("✗ session ended")
        send.cancel()
        await session.close()
        await conn.close()


async def test_an_answer_in_one_session_never_answers_the_next(tmp_path: Path) -> None:
    """Session 1 accepts a send; session 2's first send must be asked again.

    Sends are known by their first transfer id, which restarts at 1 in each session:
    session 2's first send took session 1's answer, and its files were stored with
    nobody asked.
    """
    note = tmp_path / "note.txt"
    note.write_bytes(b"hello")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        rows = await session_sending(app, pilot, note, accept=True)
        assert len(rows) == 1 and rows[0].has_class("-done")
        (tmp_path / "inbox" / "note.txt").unlink()
        session, conn = await dialed_session(app, pilot)
        try:
            send = asyncio.get_running_loop().create_task(session.send_paths([note]))
            bar = app.session_screen.query_one(OfferBar)
            await wait_for(pilot, lambda: bar.pending == 1 or send.done())
            assert not send.done(), "the second session's send was answered by nobody"
            assert bar.pending == 1
            await pilot.press("ctrl+n")
            with contextlib.suppress(TransferRejected):
                async with asyncio.timeout(10):
                    await send
            assert not (tmp_path / "inbox" / "note.txt").exists()
        finally:
            await session.close()
            await conn.close()


def screen_lines(app: RdvApp) -> list[str]:
    """The screen as the user sees it, line by line."""
    assert app.screen._compositor is not None
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def test_a_file_cut_off_keeps_its_name_and_whole_reason_at_80_columns(
    tmp_path: Path,
) -> None:
    """The peer vanishes mid-file: the row's reason (errno, partial file kept) took the
    whole line at 80 columns, the file's name was cut to nothing and the reason's end
    ('to resume') was cut off."""
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:
        stream.truncate(2**30)  # sparse: fast to read, long enough to cut off
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        session, conn = await dialed_session(app, pilot)
        send = asyncio.get_running_loop().create_task(session.send_paths([big]))
        bar = app.session_screen.query_one(OfferBar)
        await wait_for(pilot, lambda: bar.pending == 1)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: app.session_screen.bytes_in > 0)
        conn.writer.transport.abort()  # the peer is gone mid-file
        row = app.session_screen.query_one(FilesPane).row("in", 1)
        assert row is not None
        await wait_for(pilot, lambda: row.has_class("-failed"))
        await pilot.pause(0.2)
        assert "partial file kept" in row.status_text
        text = "\n".join(screen_lines(app))
        assert "↓ big.bin (1.0 GiB)" in text
        # Wherever the reason wraps, its end is on screen.
        assert "to resume" in " ".join(text.replace("│", " ").split())
        with contextlib.suppress(SessionError):
            await send
        await session.close()
        await conn.close()


async def test_a_resumed_file_counts_only_the_bytes_that_moved(tmp_path: Path) -> None:
    """Session 1 is cut off mid-file; session 2 resumes it. The link strip's byte count
    (its rate and sparkline) took the resumed offset as bytes just received: a resume of
    hundreds of MiB showed as a rate spike of GB/s."""
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:
        stream.truncate(512 * 2**20)
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        app.controller.session_switch_delay = 0.0
        screen = app.session_screen
        seen: list[object] = []
        feed = screen.feed

        def watch(event: ev.Event) -> None:
            seen.append(event)
            feed(event)

        screen.feed = watch  # type: ignore[method-assign]
        session, conn = await dialed_session(app, pilot)
        send = asyncio.get_running_loop().create_task(session.send_paths([big]))
        bar = screen.query_one(OfferBar)
        await wait_for(pilot, lambda: bar.pending == 1)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: screen.bytes_in > 64 * 2**20)
        conn.writer.transport.abort()
        with contextlib.suppress(SessionError):
            await send
        await session.close()
        await conn.close()
        await wait_for(pilot, lambda: screen.query_one(LinkStrip).closed != "")
        before = screen.bytes_in
        session, conn = await dialed_session(app, pilot)
        try:
            send = asyncio.get_running_loop().create_task(session.send_paths([big]))
            await wait_for(pilot, lambda: bar.pending == 1)
            await pilot.press("ctrl+t")
            async with asyncio.timeout(60):
                assert all(result.ok for result in await send)
            await pilot.pause(0.3)
            resumed = [e for e in seen if isinstance(e, ev.TransferResumed)]
            assert resumed and resumed[-1].offset > 0
            moved = big.stat().st_size - resumed[-1].offset
            assert screen.bytes_in - before == moved
        finally:
            await session.close()
            await conn.close()
