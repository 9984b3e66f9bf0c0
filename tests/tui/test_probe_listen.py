"""The app's own server cannot listen (``rdv tui --listen`` on a port in use)."""

from __future__ import annotations

import socket
from pathlib import Path

from textual.widgets import Static

from rdv_tui.app import make_app
from rdv_tui.widgets.server_view import ServerCounters

from tests.proc_support import kill_left
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


async def test_the_accepting_banner_names_rdv_send_and_it_works(tmp_path: Path) -> None:
    """With the role accept, the banner named only 'rdv tui … (dial, same code)', though
    'rdv send' dials as well: run what the banner says, a real rdv send process."""
    import asyncio
    import shlex
    import sys

    from rdv_tui.widgets.files import OfferBar

    from tests.tui.test_live import fill_connect_form

    note = tmp_path / "note.txt"
    note.write_text("from the banner\n")
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.controller.embedded is not None)
        await fill_connect_form(app, pilot, "4242-quiet-harbor")
        app.connect_screen.query_one("#role-accept").value = True  # type: ignore[attr-defined]
        await pilot.pause()
        share = str(app.connect_screen.query_one("#share", Static).render())
        line = share.split("On the other machine: ", 1)[1].replace("\n", " ")
        command = line.split("   or   ")[0].replace("FILE", shlex.quote(str(note)))
        assert command.startswith("rdv send ") and "--code 4242-quiet-harbor" in command
        app.controller.session_switch_delay = 0.0
        await pilot.press("ctrl+r")
        argv = [sys.executable, "-m", "rdv_tui", *shlex.split(command)[1:]]
        sender = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            await wait_for(pilot, lambda: bool(app.session_screen.query(OfferBar)), limit=30)
            bar = app.session_screen.query_one(OfferBar)
            await wait_for(pilot, lambda: bar.pending == 1, limit=30)
            await pilot.press("ctrl+t")
            async with asyncio.timeout(30):
                assert await sender.wait() == 0
            assert (tmp_path / "inbox" / "note.txt").read_text() == "from the banner\n"
        finally:
            await kill_left(sender)


async def test_copy_code_says_what_it_copied(tmp_path: Path) -> None:
    """ctrl+y with an empty code said 'copied ' (and copied nothing); a race-only token
    with brackets was read as markup ('[red]x' showed as a red 'x')."""
    from textual.widgets import Input

    from rdv_tui.app import AppConfig

    app = make_app(AppConfig(embedded_server=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        code = app.connect_screen.query_one("#code", Input)
        code.value = ""
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert app._notifications
        last = list(app._notifications)[-1]
        assert "no code to copy" in last.message
        code.value = "[red]x"
        await pilot.press("ctrl+y")
        await pilot.pause()
        last = list(app._notifications)[-1]
        assert last.message == "copied [red]x" and not last.markup
        assert app.clipboard == "[red]x"
