"""Attempts as a new user starts, replaces and cancels them (issue 16)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Checkbox, Input

from rdv_core import events as ev
from rdv_core.client._client import Client
from rdv_core.events import Candidate
from rdv_core.wire import AddrSpace
from rdv_tui.app import AppConfig, make_app
from rdv_tui.race_model import RaceModel, RowState
from rdv_tui.screens.candidate import describe_event


async def wait_for(pilot: Pilot[int], check: Callable[[], bool], limit: float = 15.0) -> None:
    async with asyncio.timeout(limit):
        while not check():
            await pilot.pause(0.02)


async def test_new_attempt_shows_no_stale_failure_and_c_cancels(tmp_path: Path) -> None:
    app = make_app(AppConfig(export_dir=tmp_path, download_dir=tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        form, race = app.connect_screen, app.race_screen
        form.query_one("#race-only", Checkbox).value = True
        form.query_one("#timeout", Input).value = ""  # wait as long as the server keeps us

        def banner() -> str:
            return str(race.query_one("#result").render())

        for token in ("lonely-a", "lonely-b"):
            await app.switch_mode("connect")
            form.query_one("#code", Input).value = token
            await pilot.pause()
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: app.current_mode == "race" and "lobby" in banner())
        await pilot.pause(0.3)  # the first attempt's cancellation has long been reported
        assert not any(isinstance(e, ev.AttemptFailed) for e in race.model.events)
        assert "FAILED" not in banner()
        assert race.model.server.method == "DIAL"
        # c cancels the attempt that waits in the lobby, and says so.
        await pilot.press("c")
        await wait_for(pilot, lambda: race.model.result is not None)
        assert race.model.result is not None and "cancel" in race.model.result.reason
        assert "cancelled" in banner()
        assert not app.controller.attempt_running and not race.running


async def test_peer_that_refuses_loopback_gets_a_plain_hint(tmp_path: Path) -> None:
    """The one-machine trap: our loopback dial reaches a peer whose spaces exclude
    loopback; it closes the conn, and only its own log said why."""
    app = make_app(AppConfig(export_dir=tmp_path, download_dir=tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        assert app.controller.embedded is not None
        form, race = app.connect_screen, app.race_screen
        form.query_one("#race-only", Checkbox).value = True
        form.query_one("#code", Input).value = "trap-token"
        form.query_one("#wait", Input).value = "0.3"
        await pilot.pause()
        # public6 only: this peer reports and dials nothing here, and refuses loopback conns.
        peer = Client(spaces=AddrSpace.PUBLIC6, timeout=20)
        accept = asyncio.get_running_loop().create_task(
            peer.accept(app.controller.embedded.url, "trap-token")
        )
        await pilot.press("ctrl+r")
        try:
            await wait_for(pilot, lambda: race.model.result is not None)
            assert race.model.result is not None and race.model.result.is_relay
            details = [row.detail for row in race.model.rows.values()]
            assert any("the peer closed it" in d and "loopback4" in d for d in details), details
        finally:
            conn = await accept
            await conn.close()
            with contextlib.suppress(Exception):
                await app.controller.close_connection()


def test_accepter_relay_row_ends_in_the_state_the_events_give() -> None:
    relay = Candidate(1, "127.0.0.1:8080", "relay", "relay")
    inbound = Candidate(2, "127.0.0.1:40000", "loopback4", "inbound")
    model = RaceModel()
    model.apply_all(
        [
            ev.AttemptStarted(0.0, "ACCEPT", "http://127.0.0.1:8080", "loopback4", ""),
            ev.RelayReady(0.01, relay),
            ev.InboundAccepted(0.02, inbound),
            ev.HandshakeOk(0.03, inbound),
            ev.Picked(0.04, inbound, False, 0.04),
        ]
    )
    states = [model.rows[1].state]
    model.apply(ev.Discarded(0.05, relay, "the dialer picked p2p"))
    states.append(model.rows[1].state)
    assert states == [RowState.READY, RowState.DISCARDED]


def test_candidate_details_print_no_raw_floats() -> None:
    c = Candidate(3, "127.0.0.1:4000", "loopback4", "self")
    line = describe_event(ev.Picked(7.893123550000041, c, False, 7.893123550000041))
    assert "7893.1" in line
    assert not re.search(r"\d\.\d{4,}", line), line
