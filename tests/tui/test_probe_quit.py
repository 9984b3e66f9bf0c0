"""Quitting the app with a file moving (real peers on loopback, the app's embedded server).

A real dialing :class:`Session` accepts what the app sends and stops reading once the
file moves (its transport paused): the file stalls mid-way, so the test quits in the
middle without moving a GiB. The user types the path and presses ``ctrl+q``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from rdv_core import events as ev
from rdv_core.client import Conn
from rdv_core.session import IncomingOffer, Session
from rdv_tui import controller
from rdv_tui.app import QUIT_REASON, RdvApp, make_app

from tests.tui.test_live import config, dial_the_app, wait_for


async def accept_all(offer: IncomingOffer) -> bool:
    return True


class StallingPeer:
    """The peer's session events; it stops reading at the first progress of a file."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.transport: asyncio.Transport | None = None

    def on_event(self, event: ev.Event) -> None:
        self.events.append(event)
        if isinstance(event, ev.FileProgress) and self.transport is not None:
            self.transport.pause_reading()

    def resume(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()
        self.transport = None


async def app_sends_a_big_file(
    app: RdvApp, pilot: Pilot[int], tmp_path: Path, peer: StallingPeer
) -> tuple[Session, Conn]:
    """The peer dials the app, the user sends a sparse 1 GiB file, which stalls mid-way."""
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:
        stream.truncate(2**30)
    (tmp_path / "peer").mkdir()
    await wait_for(pilot, lambda: app.controller.embedded is not None)
    app.controller.session_switch_delay = 0.0
    await pilot.press("f2")
    session, conn = await dial_the_app(
        app, pilot, on_offer=accept_all, download_dir=tmp_path / "peer", on_event=peer.on_event
    )
    transport = conn.writer.transport
    assert isinstance(transport, asyncio.Transport)
    peer.transport = transport
    screen = app.session_screen
    await wait_for(pilot, lambda: bool(screen.query("#send-path")))
    field = screen.query_one("#send-path", Input)
    field.value = str(big)
    field.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.bytes_out > 0)
    return session, conn


async def test_quitting_mid_transfer_asks_first_and_tells_the_peer_why(tmp_path: Path) -> None:
    """A stray ``ctrl+q`` (or ``ctrl+l``) ended a 1 GiB send at once, without a word, and
    the peer read ``closed by peer``: nothing said that the sender had quit and would not
    come back."""
    peer = StallingPeer()
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        session, conn = await app_sends_a_big_file(app, pilot, tmp_path, peer)
        await pilot.press("ctrl+l")  # "redraw" in many terminal programs: from habit
        await pilot.press("ctrl+q")
        await pilot.pause()
        peer.resume()  # reading again, the peer will get our close
        asked = [n.message for n in app._notifications if n.title == "Transfer running"]
        assert any("ctrl+l again" in text for text in asked), "ctrl+l ended it at once"
        assert app.is_running, "ctrl+q quit at once with a file moving"
        assert len(asked) == 2 and all("1 file not finished" in text for text in asked)
        assert "ctrl+l again" in asked[0] and "ctrl+q again" in asked[1]
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running
    try:  # the app has quit: its unmount closed the session
        async with asyncio.timeout(10):
            reason = await session.wait_closed()
    finally:
        await session.close()
        await conn.close()
    assert reason == QUIT_REASON
    failed = [e for e in peer.events if isinstance(e, ev.FileFailed)]
    assert failed and failed[0].reason.startswith(f"session ended: {QUIT_REASON}")


async def test_quitting_with_a_peer_that_stopped_reading_does_not_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer stops reading (its machine asleep, its window full) while the app sends.
    Quitting waited for the unsent bytes to leave the socket, that is for ever: the app
    froze on ``ctrl+q`` and only a kill ended it."""
    monkeypatch.setattr(controller, "CLOSE_TIMEOUT_S", 0.3)  # the test's patience, not 2 s
    peer = StallingPeer()
    app = make_app(config(tmp_path))
    try:
        async with asyncio.timeout(20):
            async with app.run_test(size=(80, 24)) as pilot:
                session, conn = await app_sends_a_big_file(app, pilot, tmp_path, peer)
                await pilot.press("ctrl+q", "ctrl+q")  # asked, then confirmed
                await pilot.pause()
                assert not app.is_running
                quit_at = time.monotonic()
            # The app's unmount (closing the session and the conn) ran on leaving run_test.
            assert time.monotonic() - quit_at < 3.0
    finally:
        peer.resume()  # it reads again: it sees at once that the app is gone
        await session.close()
        await conn.close()
