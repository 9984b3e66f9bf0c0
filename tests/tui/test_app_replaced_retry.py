"""The app's lobby conn replaced (409): it tries again after the CLI's pause, and says so.

docs/PROTOCOL.md 12.1 (Interference) and 18: each retry of a replaced lobby conn comes
``RETRY_PAUSE_S`` (0.5 s) after the ``409``, as ``rdv send`` / ``rdv receive`` do since
stop 37; the app came back within 10 ms, so two peers of the same method traded the
slot at network speed. A real listener on loopback answers every lobby request ``409``;
the real app, driven by Pilot, connects to it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rdv_core.session import generate_code
from rdv_core.session._connect import RETRY_PAUSE_S
from rdv_tui.app import make_app

from tests.tui.test_live import config, fill_connect_form, wait_for


async def test_a_replaced_lobby_conn_waits_the_clis_pause_before_it_tries_again(
    tmp_path: Path,
) -> None:
    lobby: list[float] = []  # when each DIAL came (the doctor's probe GET is not one)

    async def replaced(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"DIAL "):
                lobby.append(time.monotonic())
            body = b"replaced by another conn\n"
            writer.write(
                b"HTTP/1.1 409 Conflict\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(replaced, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        app = make_app(config(tmp_path, server_url=f"http://127.0.0.1:{port}/"))
        async with app.run_test(size=(80, 24)) as pilot:
            await fill_connect_form(app, pilot, generate_code())
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: len(lobby) >= 2)
            said = [n.message for n in app._notifications if n.title == "Code in use"]
    finally:
        server.close()
    assert lobby[1] - lobby[0] >= RETRY_PAUSE_S - 0.01, lobby
    assert said and said[0].endswith(f"; trying again in {RETRY_PAUSE_S:g} s"), said
