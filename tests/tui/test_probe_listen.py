"""The app's own server cannot listen (``rdv tui --listen`` on a port in use)."""

from __future__ import annotations

import socket
from pathlib import Path

from textual.widgets import Static

from rdv_tui.app import make_app
from rdv_tui.widgets.server_view import ServerCounters

from tests.tui.test_live import config, wait_for


async def test_a_port_in_use_is_said_where_the_server_would_be(tmp_path: Path) -> None:
    """The error notice went away and the Connect banner said 'Starting the embedded
    server…' for good; the Server screen blamed --server or --replay."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = make_app(config(tmp_path, listen=("127.0.0.1", port)))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: bool(app._notifications))
            await pilot.pause(0.2)
            assert app.controller.embedded is None
            share = str(app.connect_screen.query_one("#share", Static).render())
            assert "Starting the embedded server" not in share
            assert "could not start" in share and f"127.0.0.1:{port}" in share
            await pilot.press("f5")
            await pilot.pause(0.2)
            counters = str(app.server_screen.query_one(ServerCounters).render())
            assert "Address already in use" in counters
            assert "--server URL or --replay" not in counters
