"""Pilot tests with real rdv_core objects on loopback: embedded server, real peers.

Every peer uses only the loopback address spaces; every server, session and task a
test starts is closed by the app's unmount or by the test itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input

from rdv_core import events as ev
from rdv_core.client import Conn
from rdv_core.client._client import Client
from rdv_core.session import (
    Session,
    SessionError,
    TransferRejected,
    generate_code,
    parse_code,
)
from rdv_core.wire import SINGLE_SPACES, AddrSpace, format_spaces
from rdv_tui.app import AppConfig, RdvApp, make_app
from rdv_tui.demo_peer import DemoPeer
from rdv_tui.race_model import PEER_ID_BASE, RowState
from rdv_tui.widgets.chat import ChatLog
from rdv_tui.widgets.files import OfferBar, TransferRow
from rdv_tui.widgets.server_view import PairsTable, ServerCounters, ServerLog

LOOPBACK = AddrSpace.LOOPBACK4 | AddrSpace.LOOPBACK6


async def wait_for(pilot: Pilot[int], check: Callable[[], bool], limit: float = 10.0) -> None:
    """Let the app run until ``check()`` holds (fail after ``limit`` seconds)."""
    async with asyncio.timeout(limit):
        while not check():
            await pilot.pause(0.02)


def config(tmp_path: Path, **kwargs: object) -> AppConfig:
    return AppConfig(
        export_dir=tmp_path / "exports",
        download_dir=tmp_path / "inbox",
        **kwargs,  # type: ignore[arg-type]
    )


async def fill_connect_form(app: RdvApp, pilot: Pilot[int], code: str) -> None:
    """Type the code and keep only the loopback spaces."""
    screen = app.connect_screen
    screen.query_one("#code", Input).value = code
    for space in SINGLE_SPACES:
        box = screen.query_one(f"#space-{format_spaces(space)}", Checkbox)
        box.value = bool(space & LOOPBACK)
    await pilot.pause()


@contextlib.asynccontextmanager
async def app_dials_a_demo_peer(
    app: RdvApp, pilot: Pilot[int], tmp_path: Path
) -> AsyncIterator[DemoPeer]:
    """The app's embedded server up, a demo peer waiting on a fresh code and the Connect form
    filled with it (``ctrl+r`` dials); at the end the app's conn and the peer are closed."""
    await wait_for(pilot, lambda: app.controller.embedded is not None)
    assert app.controller.embedded is not None
    code = generate_code()
    peer = DemoPeer(app.controller.embedded.url, code, tmp_path / "peer")
    peer_task = asyncio.get_running_loop().create_task(peer.run())
    try:
        await fill_connect_form(app, pilot, code)
        yield peer
    finally:
        await app.controller.close_connection()
        with contextlib.suppress(asyncio.CancelledError, SessionError):
            peer_task.cancel()
            await peer_task


async def dial_the_app(
    app: RdvApp, pilot: Pilot[int], **session_options: Any
) -> tuple[Session, Conn]:
    """The app accepts on a fresh code (Connect form, ``ctrl+r``) and a real dialing
    :class:`Session` (made with ``session_options``: ``on_offer``, ``download_dir`` …)
    meets it through the embedded server: (session, its conn)."""
    assert app.controller.embedded is not None
    code = generate_code()
    await fill_connect_form(app, pilot, code)
    app.connect_screen.query_one("#role-accept").value = True  # type: ignore[attr-defined]
    parsed = parse_code(code)
    client = Client(spaces=LOOPBACK, timeout=20)
    dial = asyncio.get_running_loop().create_task(
        client.dial(app.controller.embedded.url, parsed.token)
    )
    await pilot.press("ctrl+r")
    async with asyncio.timeout(20):
        conn = await dial
    session = Session(
        conn.reader, conn.writer, parsed, is_dialer=True, handshake_timeout=10, **session_options
    )
    await session.start()
    return session, conn


@contextlib.asynccontextmanager
async def a_peer_dials_the_app(app: RdvApp, pilot: Pilot[int]) -> AsyncIterator[Session]:
    """:func:`dial_the_app`, closed at the end."""
    session, conn = await dial_the_app(app, pilot)
    try:
        yield session
    finally:
        await session.close()
        await conn.close()
        await pilot.pause(0.3)


async def test_connect_race_chat_and_file(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(120, 40)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path) as peer,
    ):
        app.controller.session_switch_delay = 0.1
        await pilot.press("ctrl+r")
        # The race plays on the dashboard: rows appear, then reach final states.
        race = app.race_screen
        await wait_for(pilot, lambda: race.model.result is not None)
        assert race.model.result is not None and race.model.result.ok
        table = race.query_one("#race-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == len(race.model.rows))
        # Our candidates (the peer's may join once the session delivers its diagnosis).
        rows = [r for r in race.model.rows.values() if r.candidate.id < PEER_ID_BASE]
        assert [r.state for r in rows].count(RowState.PICKED) == 1
        assert any(r.candidate.origin == "relay" for r in rows)
        # The dialer's relay is discarded once the server confirmed the p2p report,
        # a round trip after the pick (longer on a busy machine).
        await wait_for(pilot, lambda: all(r.state.is_final for r in race.model.rows.values()))
        # The session comes up and the app moves to the Session screen.
        await wait_for(
            pilot, lambda: app.current_mode == "session" and app.controller.session is not None
        )
        # The screen composes its widgets on its first refresh after the switch.
        await wait_for(pilot, lambda: bool(app.session_screen.query(ChatLog)))
        chat = app.session_screen.query_one(ChatLog)
        await wait_for(pilot, lambda: ("peer", peer_greeting()) in chat.lines_added)
        # Chat both ways: type a line; the peer receives it and echoes it back.
        await pilot.click("#chat-input")
        await pilot.press(*"ping 42", "enter")
        await wait_for(pilot, lambda: ("peer", "echo: ping 42") in chat.lines_added)
        assert any(isinstance(e, ev.ChatReceived) and e.text == "ping 42" for e in peer.events)
        # A file: typed path, sent, verified at the peer, verified mark on screen.
        sample = tmp_path / "hello.txt"
        sample.write_bytes(b"hello rdv\n" * 5000)
        app.session_screen.query_one("#send-path", Input).value = str(sample)
        await pilot.click("#send")
        row_id = "#t-1-out-1"
        await wait_for(pilot, lambda: bool(app.session_screen.query(row_id)))
        row = app.session_screen.query_one(row_id, TransferRow)
        await wait_for(pilot, lambda: row.has_class("-done"))
        assert row.status_text.startswith("✔ verified")
        received = tmp_path / "peer" / "hello.txt"
        assert received.read_bytes() == sample.read_bytes()


def peer_greeting() -> str:
    from rdv_tui.demo_peer import GREETING

    return GREETING


async def test_incoming_offer_accept_and_reject(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        app.controller.session_switch_delay = 0.0
        async with a_peer_dials_the_app(app, pilot) as session:
            await wait_for(pilot, lambda: bool(app.session_screen.query(OfferBar)))
            big = tmp_path / "offered.bin"
            big.write_bytes(bytes(range(256)) * 4096)
            send = asyncio.get_running_loop().create_task(session.send_paths([big]))
            bar = app.session_screen.query_one(OfferBar)
            await wait_for(pilot, lambda: bar.pending == 1)
            await pilot.pause(0.1)  # let the bar's layout settle before clicking it
            assert await pilot.click("#offer-accept")
            async with asyncio.timeout(10):
                await send
            row = app.session_screen.query_one("#t-1-in-1", TransferRow)
            await wait_for(pilot, lambda: row.has_class("-done"))
            assert (tmp_path / "inbox" / "offered.bin").read_bytes() == big.read_bytes()
            # A second offer, rejected with the key binding.
            second = asyncio.get_running_loop().create_task(session.send_paths([big]))
            await wait_for(pilot, lambda: bar.pending == 1)
            await pilot.press("ctrl+n")
            with pytest.raises(TransferRejected, match="declined"):
                async with asyncio.timeout(10):
                    await second
            row2 = app.session_screen.query_one("#t-1-in-2", TransferRow)
            assert row2.has_class("-failed")


async def test_race_only_and_server_screen(tmp_path: Path) -> None:
    app = make_app(config(tmp_path, serve=True))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "server")
        assert app.controller.embedded is not None
        url = app.controller.embedded.url
        await app.switch_mode("connect")
        await fill_connect_form(app, pilot, "raw-token-1")
        app.connect_screen.query_one("#race-only", Checkbox).value = True
        accept = asyncio.get_running_loop().create_task(
            Client(spaces=LOOPBACK, timeout=20).accept(url, "raw-token-1")
        )
        await pilot.press("ctrl+r")
        other = await accept
        try:
            race = app.race_screen
            await wait_for(pilot, lambda: race.model.result is not None)
            assert app.controller.conn is not None and app.controller.session is None
            await pilot.press("f5")
            await wait_for(
                pilot,
                lambda: (
                    app.controller.embedded is not None
                    and app.controller.embedded.server.stats().p2p_total == 1
                ),
            )
            app.server_screen.refresh_stats()
            counters = str(app.server_screen.query_one(ServerCounters).render())
            assert "p2p 1" in counters and "pairs 1" in counters
            server_log = app.server_screen.query_one("#server-log", ServerLog)
            log_lines = [line.text for line in server_log.lines]
            assert any("matched raw-token-1" in line for line in log_lines)
            assert any("went p2p" in line for line in log_lines)
            assert isinstance(app.server_screen.query_one(PairsTable), PairsTable)
        finally:
            await other.close()


async def test_bad_form_input_is_refused_before_any_traffic(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        screen = app.connect_screen
        screen.query_one("#server", Input).value = "ftp://nope"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.current_mode == "connect"
        assert "✗" in str(screen.query_one("#error").render())
        screen.query_one("#server", Input).value = app.controller.embedded.url  # type: ignore[union-attr]
        screen.query_one("#code", Input).value = "no-dash"
        screen.query_one("#code", Input).value = "nodash"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.current_mode == "connect"
        assert "code" in str(screen.query_one("#error").render())
        assert screen.query_one("#code", Input).value == "nodash"  # nothing lost
        assert (
            app.controller.embedded is not None
            and app.controller.embedded.server.stats().pairs_total == 0
        )


async def test_demo_runs_a_whole_session(tmp_path: Path) -> None:
    """What ``rdv demo`` does: race, session, echoed chat, a sample file verified."""
    app = make_app(config(tmp_path, demo_dir=tmp_path / "demo"))
    async with app.run_test(size=(100, 30)) as pilot:
        app.controller.session_switch_delay = 0.1
        await wait_for(pilot, lambda: app.race_screen.model.result is not None, limit=20)
        assert app.race_screen.model.result is not None
        assert app.race_screen.model.result.ok and not app.race_screen.model.result.is_relay
        await wait_for(pilot, lambda: bool(app.session_screen.query("#t-1-out-1")), limit=20)
        row = app.session_screen.query_one("#t-1-out-1", TransferRow)
        await wait_for(pilot, lambda: row.has_class("-done"), limit=20)
        chat = app.session_screen.query_one(ChatLog)
        await wait_for(
            pilot, lambda: ("peer", "echo: hello from the dialing side") in chat.lines_added
        )
        assert app.controller.demo_peer is not None
        received = tmp_path / "demo" / "peer" / "rdv-demo-sample.bin"
        sent = tmp_path / "demo" / "outbox" / "rdv-demo-sample.bin"
        assert received.read_bytes() == sent.read_bytes()


async def test_forced_relay_session_and_bytes_per_pair(tmp_path: Path) -> None:
    """Force relay: the banner says RELAY, chat works through the server, bytes show."""
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(120, 36)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        app.connect_screen.query_one("#force-relay", Checkbox).value = True
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        race = app.race_screen
        await wait_for(pilot, lambda: race.model.result is not None)
        assert race.model.result is not None and race.model.result.is_relay
        banner = str(race.query_one("#result").render())
        assert "RELAY via server" in banner
        # Why, in the race's words: a forced relay read "no direct path won".
        assert ": no direct candidate was dialled" in banner, banner
        await wait_for(pilot, lambda: app.controller.session is not None)
        chat = app.session_screen.query_one(ChatLog)
        await wait_for(pilot, lambda: ("peer", peer_greeting()) in chat.lines_added)
        assert app.controller.session is not None
        await app.controller.session.send_chat("through the relay")
        await wait_for(pilot, lambda: ("peer", "echo: through the relay") in chat.lines_added)
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.server_screen.query_one(PairsTable).row_count == 1)
        app.server_screen.refresh_stats()
        table = app.server_screen.query_one(PairsTable)
        key = next(iter(table.rows))
        assert table.get_cell(key, "path").plain == "relay"
        assert table.get_cell(key, "d2a").plain != "0 B"  # key exchange, hello and chat


async def test_failed_attempt_shows_why(tmp_path: Path) -> None:
    """Nobody comes: the attempt times out and the banner and header say so."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        await fill_connect_form(app, pilot, "lonely-token")
        app.connect_screen.query_one("#race-only", Checkbox).value = True
        app.connect_screen.query_one("#timeout", Input).value = "1.5"
        await pilot.press("ctrl+r")
        race = app.race_screen
        # While it waits in the lobby, the axis and the banner keep moving.
        await wait_for(pilot, lambda: race.model.t_end > 0.6 or race.model.result is not None)
        assert race.model.result is None
        assert "waiting in the server's lobby" in str(race.query_one("#result").render())
        await wait_for(pilot, lambda: race.model.result is not None)
        assert race.model.result is not None and not race.model.result.ok
        assert race.model.result.reason.startswith("timeout")
        banner = str(race.query_one("#result").render())
        assert "FAILED" in banner and "waiting for the peer" in banner
        assert race.query_one("#result").has_class("-failed")
        assert app.controller.conn is None


async def test_wrong_code_is_reported(tmp_path: Path) -> None:
    """Same nameplate, other words: the race works, the session refuses, the user is told."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        peer = DemoPeer(app.controller.embedded.url, "77-amber-anchor", tmp_path / "peer")
        peer_task = asyncio.get_running_loop().create_task(peer.run())
        try:
            await fill_connect_form(app, pilot, "77-zebra-zinnia")
            await pilot.press("ctrl+r")
            race = app.race_screen
            await wait_for(pilot, lambda: "session failed" in race.note, limit=20)
            assert race.model.result is not None and race.model.result.ok
            assert app.controller.session is None and app.controller.conn is None
            assert "code" in race.note.lower()
        finally:
            with contextlib.suppress(asyncio.CancelledError, SessionError):
                peer_task.cancel()
                await peer_task  # the peer saw the mismatch too
