"""The one-machine demo's run: a peer that accepts, the race, chat, a verified file.

Kept apart from :mod:`rdv_tui.controller` (the connection lifecycle), which starts it as one
of its workers (``Controller.start_demo``) and closes the demo's peer when the app quits.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from textual.worker import WorkerCancelled, WorkerFailed

from rdv_core.session import SessionError, generate_code
from rdv_core.wire import AddrSpace
from rdv_tui.attempt import ConnectParams
from rdv_tui.cli.formatting import shown
from rdv_tui.demo_peer import DemoPeer, write_sample

if TYPE_CHECKING:
    from rdv_tui.app import RdvApp
    from rdv_tui.controller import Controller

DEMO_HINT = "demo: type a message below, the peer echoes it; F3 shows the race again"


async def run_demo(controller: Controller, app: RdvApp, directory: Path) -> None:
    """Run the demo with ``controller``'s embedded server, its peer's files in ``directory``."""

    if controller.embedded is None:
        app.notify("the demo needs the embedded server", severity="error")
        return
    code = generate_code()
    params = ConnectParams(
        server_url=controller.embedded.url,
        code=code,
        role="dial",
        spaces=AddrSpace.LOOPBACK,
        timeout_s=60.0,
    )
    app.connect_screen.show_params(params)  # F2 shows what the demo runs
    controller.run_demo_peer(DemoPeer(controller.embedded.url, code, directory / "peer"))
    try:
        await controller.start_attempt(params).wait()
    except (WorkerCancelled, WorkerFailed):
        return  # the app is closing, or the failure is already on screen
    session = controller.session
    if session is None:
        return
    sample = await asyncio.to_thread(write_sample, directory / "outbox")
    try:
        await session.send_chat("hello from the dialing side")
        await session.send_paths([sample])
    except (SessionError, OSError) as exc:
        app.notify(shown(str(exc)), severity="error", title="Demo", markup=False)
        return
    app.session_screen.show_info(DEMO_HINT)
