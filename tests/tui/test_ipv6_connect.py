"""The Connect form with an IPv6 server URL: a real server on ``[::1]``, a real peer."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from textual.widgets import Checkbox, Input

from rdv_core.client._client import Client
from rdv_core.server import RdvServer, serve_native
from rdv_core.wire import AddrSpace
from rdv_tui.app import AppConfig, make_app

from tests.tui.test_live import fill_connect_form, wait_for


async def test_the_form_dials_a_server_at_an_ipv6_url(tmp_path: Path) -> None:
    """``http://[::1]:PORT`` typed in the form, the IPv6 loopback alone: the race goes
    direct, and every address it shows is ``[v6]:port`` (the relay's too)."""
    async with serve_native(RdvServer(), host="::1", port=0) as front:
        url = front.url
        assert url.startswith("http://[::1]:"), url
        config = AppConfig(
            embedded_server=False, export_dir=tmp_path, download_dir=tmp_path, server_url=""
        )
        app = make_app(config)
        async with app.run_test(size=(120, 36)) as pilot:
            screen = app.connect_screen
            screen.query_one("#server", Input).value = url
            await pilot.pause()
            await fill_connect_form(app, pilot, "v6-token")
            screen.query_one("#race-only", Checkbox).value = True
            peer = Client(spaces=AddrSpace.LOOPBACK6, timeout=20).accept(url, "v6-token")
            accept = asyncio.get_running_loop().create_task(peer)
            screen.query_one("#space-loopback4", Checkbox).value = False
            await pilot.press("ctrl+r")
            other = await accept
            try:
                race = app.race_screen
                await wait_for(pilot, lambda: race.model.result is not None)
                assert app.controller.conn is not None
                assert not app.controller.conn.is_relay
                shown = [row.candidate.addr for row in race.model.rows.values()]
                assert shown and all(a.startswith("[") for a in shown), shown
            finally:
                await other.close()
                await app.controller.close_connection()


async def test_an_embedded_server_that_cannot_listen_on_ipv6_names_it_in_brackets(
    tmp_path: Path,
) -> None:
    """``rdv tui --listen [::1]:PORT`` with PORT taken. Old: ``cannot listen on ::1:PORT``."""
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = AppConfig(export_dir=tmp_path, download_dir=tmp_path, listen=("::1", port))
        app = make_app(config)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: bool(app.controller.listen_error))
            said = app.controller.listen_error
            assert said.startswith(f"cannot listen on [::1]:{port}: "), said
