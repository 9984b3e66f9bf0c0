"""A server on this machine sees us at loopback, as it should: the race header does not
warn that "p2p across NATs will likely fail" (a real race on loopback); a server elsewhere
that sees a private address still does.

The demo's header, the README's first try, said so in three lines (the CLI stopped in
e6d6acd); at 40 columns the warning alone took five.
"""

from __future__ import annotations

from pathlib import Path

from rdv_core import events as ev
from rdv_tui.app import make_app
from rdv_tui.race_model import RaceModel
from rdv_tui.widgets.race_header import ServerPhaseHeader

from tests.tui.test_live import app_dials_a_demo_peer, config, wait_for

MESSAGE = "expected observed address 10.0.0.7:40001 to be public IPv4: p2p across NATs …"


def test_a_server_elsewhere_still_warns() -> None:
    model = RaceModel()
    model.apply(ev.AttemptStarted(0.0, "DIAL", "http://203.0.113.10:8080/", "public4", "p"))
    model.apply(ev.ObservedAddrWarning(0.1, "10.0.0.7:40001", MESSAGE))
    assert model.server.warning == MESSAGE


async def test_a_loopback_race_does_not_warn(tmp_path: Path) -> None:
    app = make_app(config(tmp_path))
    async with (
        app.run_test(size=(100, 30)) as pilot,
        app_dials_a_demo_peer(app, pilot, tmp_path),
    ):
        app.controller.session_switch_delay = 3600.0
        await pilot.press("ctrl+r")
        race = app.race_screen
        await wait_for(pilot, lambda: race.model.result is not None, limit=30)
        # The core still reports it (an export keeps it); the header does not show it.
        assert any(isinstance(e, ev.ObservedAddrWarning) for e in race.model.events)
        assert race.model.server.warning == ""
        header = race.query_one(ServerPhaseHeader)
        assert "⚠" not in str(header.render())
        assert "observed 127.0.0.1:" in str(header.render())
