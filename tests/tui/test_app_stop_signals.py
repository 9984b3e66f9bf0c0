"""SIGTERM and SIGHUP at every stage of the app's life, on the real app on a pty.

README (the app): a SIGTERM quits the app as cleanly as ``ctrl+q``, exit 143, the
demo's folder removed, the terminal given back; one inherited as ignored (``nohup``)
stays ignored. The signals come in a burst, as fast as the test can send them, so
that some land in every stage of the part under test: the app's start-up before it
mounted, its own shutdown after ``ctrl+q``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from tests.tui.test_cli_user import Terminal, running_demo

ALT_SCREEN_ON, ALT_SCREEN_OFF = b"\x1b[?1049h", b"\x1b[?1049l"


async def _burst(pid: int, *signums: signal.Signals) -> None:
    """``signums`` in turn until ``pid`` is gone (a zombie still takes them)."""
    with contextlib.suppress(ProcessLookupError):
        while True:
            for signum in signums:
                os.kill(pid, signum)
            await asyncio.sleep(0)


async def _exit_under(term: Terminal, *signums: signal.Signals) -> int:
    bursting = asyncio.get_running_loop().create_task(_burst(term.pid, *signums))
    try:
        return await term.exit_status()
    finally:
        bursting.cancel()


async def test_a_sigterm_burst_while_the_demo_quits_still_ends_143(tmp_path: Path) -> None:
    """SIGTERM after SIGTERM while the demo shuts down after ``ctrl+q`` (a supervisor
    that stops what seems to hang). asyncio reset a signal to its default action when
    the app let go of it, before the app's late handler took it: one that landed then
    killed the app (exit -15, the demo's folder left behind; 1 run in 40 with a SIGTERM
    every 2 ms). This fast, asyncio's wakeup pipe filled up: 'Exception ignored when
    trying to write to the signal wakeup fd' tracebacks, and the app never ended."""
    async with running_demo(tmp_path) as (term, folders):
        term.type("\x11")  # ctrl+q
        status = await _exit_under(term, signal.SIGTERM)
        assert status == 128 + signal.SIGTERM, term.text()[-500:]
        assert not folders()
        assert "Traceback" not in term.text()


async def test_a_sigterm_while_the_app_starts_quits_it_cleanly_and_nohup_holds(
    tmp_path: Path,
) -> None:
    """``nohup rdv tui``, then SIGTERMs (and SIGHUPs) from the moment Textual took the
    terminal over, before the app mounted: no handler was set yet, and the default
    action ended it (exit -15), the terminal left in the app's alternate screen. Now:
    143 (SIGHUP, inherited as ignored, stays ignored: not 129), the terminal given back."""
    term = Terminal(
        ["tui", "--export-dir", str(tmp_path)],
        env={"RDV_CONFIG": str(tmp_path / "none.toml"), "XDG_CONFIG_HOME": str(tmp_path)},
        ignore=(signal.SIGHUP,),
    )
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    try:
        await term.wait_for(lambda: ALT_SCREEN_ON in term.output)
        status = await _exit_under(term, signal.SIGHUP, signal.SIGTERM)
        with contextlib.suppress(OSError):
            term.read()
        out = term.output
        assert status == 128 + signal.SIGTERM, term.text()[-500:]
        assert out.rfind(ALT_SCREEN_OFF) > out.rfind(ALT_SCREEN_ON), term.text()[-500:]
        assert "Traceback" not in term.text()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        term.close()
