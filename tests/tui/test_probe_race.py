"""The Race screen's header and banner say what is still true (real peers on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input

from rdv_core.client._client import Client
from rdv_core.errors import ServerRejectedError
from rdv_core.session import SessionError, generate_code, parse_code
from rdv_tui.app import make_app
from rdv_tui.demo_peer import DemoPeer
from rdv_tui.widgets.race_header import ResultBanner, ServerPhaseHeader
from rdv_tui.widgets.waterfall import Waterfall

from tests.tui.test_live import (
    LOOPBACK,
    app_dials_a_demo_peer,
    config,
    fill_connect_form,
    wait_for,
)


async def test_a_failed_lobby_wait_no_longer_says_it_waits(tmp_path: Path) -> None:
    """Nobody comes: once the attempt failed, the header kept 'waiting in the lobby'."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        await fill_connect_form(app, pilot, "lonely-token")
        app.connect_screen.query_one("#race-only", Checkbox).value = True
        app.connect_screen.query_one("#timeout", Input).value = "1"
        await pilot.press("ctrl+r")
        race = app.race_screen
        header = race.query_one(ServerPhaseHeader)
        await wait_for(pilot, lambda: "waiting in the lobby" in str(header.render()))
        await wait_for(pilot, lambda: race.model.result is not None)
        await pilot.pause(0.1)
        assert "FAILED" in str(race.query_one(ResultBanner).render())
        assert "waiting in the lobby" not in str(header.render())


async def test_the_banner_stops_saying_session_up_once_it_ended(tmp_path: Path) -> None:
    """The dashboard kept 'session up: F4 for chat and files' after the session ended."""
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(80, 24)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        race = app.race_screen
        await wait_for(pilot, lambda: "session up" in race.note, limit=20)
        await wait_for(pilot, lambda: app.current_mode == "session")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.controller.session is None)
        await pilot.press("f3")
        await wait_for(pilot, lambda: "session up" not in race.note)
        banner = str(race.query_one(ResultBanner).render())
        assert "session ended" in banner and "session up" not in banner


async def test_a_replaced_lobby_conn_tries_again_with_the_same_code(tmp_path: Path) -> None:
    """Someone else dials the app's nameplate while it waits in the lobby.

    The server replaces the app's lobby conn (409): ``rdv send`` / ``rdv receive`` try
    again with the same code (README, Interference); the app gave up at once with a
    bare '409 Conflict: replaced by another conn', and the real peer found nobody.
    """
    app = make_app(config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        url = app.controller.embedded.url
        code = generate_code()
        await fill_connect_form(app, pilot, code)
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        race = app.race_screen
        header = race.query_one(ServerPhaseHeader)
        await wait_for(pilot, lambda: "waiting in the lobby" in str(header.render()))
        # The interferer takes the nameplate (same token, same role), then is replaced.
        squatter = Client(spaces=LOOPBACK, timeout=10)
        with pytest.raises(ServerRejectedError, match="409"):
            async with asyncio.timeout(10):
                await squatter.dial(url, parse_code(code).token)
        assert any(n.title == "Code in use" for n in app._notifications)
        peer = DemoPeer(url, code, tmp_path / "peer")
        peer_task = asyncio.get_running_loop().create_task(peer.run())
        try:
            await wait_for(pilot, lambda: app.controller.session is not None, limit=20)
            assert race.model.result is not None and race.model.result.ok
        finally:
            await app.controller.close_connection()
            with contextlib.suppress(asyncio.CancelledError, SessionError):
                peer_task.cancel()
                await peer_task


async def test_an_attempt_over_in_a_millisecond_has_distinct_axis_ticks(tmp_path: Path) -> None:
    """No server on that port: the attempt fails at once and the axis read '0  0  1'."""
    import socket

    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
        app = make_app(config(tmp_path, server_url=url))
        async with app.run_test(size=(80, 24)) as pilot:
            await fill_connect_form(app, pilot, generate_code())
            await pilot.press("ctrl+r")
            race = app.race_screen
            await wait_for(pilot, lambda: race.model.result is not None)
            await pilot.pause(0.1)
            assert race.model.result is not None and "server" in race.model.result.reason
            axis = str(race.query_one(Waterfall).render()).splitlines()[0]
            ticks = axis.split()[2:]  # after "t (ms)"
            assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), axis


async def test_a_candidates_story_shows_its_whole_state_at_60_columns(tmp_path: Path) -> None:
    """The title line of Enter's modal was cut at the edge: 'failed: unreac'."""
    from rdv_tui.app import AppConfig
    from rdv_tui.screens.candidate import CandidateDetails

    from tests.tui.test_probe_files import screen_lines

    race = Path(__file__).parents[2] / "screenshots" / "races" / "cone-rst.jsonl"
    app = make_app(AppConfig(replay=race, embedded_server=False))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        app.screen.query_one("#race-table").focus()
        await pilot.press("down", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, CandidateDetails)
        text = " ".join(line.strip(" █") for line in screen_lines(app))
        assert "failed: unreachable (errno 101)" in " ".join(text.split())


async def test_connecting_with_a_session_open_asks_first(tmp_path: Path) -> None:
    """F2 to read the code, a stray Enter: the open session (chat, transfers) ended
    without a word. Now the first Connect warns; a second one within 5 s replaces it."""
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(80, 24)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.current_mode == "session", limit=20)
        session = app.controller.session
        assert session is not None
        await pilot.press("f2")
        await pilot.press("enter")  # in the code field
        await pilot.pause(0.3)
        assert app.controller.session is session and not session.closed
        assert any(n.title == "Session open" for n in app._notifications)
        await pilot.press("enter")
        await wait_for(pilot, lambda: session.closed)
        await wait_for(pilot, lambda: app.current_mode == "race")


@pytest.mark.parametrize("size", [(80, 24), (160, 48), (300, 60)])
async def test_the_waterfall_names_the_peers_rows_whole(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """The peer's candidates join once its report arrives: the waterfall cut their labels
    to ``#1001 peer s`` (13 columns) while the table above showed ``peer self`` whole.
    At 300 columns every reason is whole too (``picked the peer's end…`` was cut at 24)."""
    from rdv_tui.race_model import PEER_ID_BASE
    from rdv_tui.widgets.waterfall import _shown_reason

    app = make_app(config(tmp_path))
    async with app.run_test(size=size) as pilot, app_dials_a_demo_peer(app, pilot, tmp_path):
        app.controller.session_switch_delay = 60.0  # stay on the dashboard
        await pilot.press("ctrl+r")
        race = app.race_screen
        await wait_for(
            pilot,
            lambda: any(cid >= PEER_ID_BASE for cid in race.model.rows),
            limit=30,
        )
        await wait_for(pilot, lambda: all(r.state.is_final for r in race.model.rows.values()))
        await pilot.pause(0.2)
        lines = str(race.query_one(Waterfall).render()).splitlines()
        for cid, row in race.model.rows.items():
            label = f"#{cid} {row.candidate.origin}"
            line = next((line for line in lines if line.startswith(label + " ")), None)
            assert line is not None, (label, lines)
            if size[0] >= 300:
                assert line.rstrip().endswith(" " + _shown_reason(row.reason_text)), line
        assert any(cid >= PEER_ID_BASE for cid in race.model.rows)
