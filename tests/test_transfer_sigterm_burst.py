"""A burst of SIGTERM (a supervisor repeating itself, ``kill`` in a loop) on a real
``rdv send`` / ``rdv receive`` waiting for its peer on a real server on loopback.

Before, the first SIGTERM cancelled the command and asyncio's ``remove_signal_handler``
gave SIGTERM back its default action while the command ended: the next one killed it,
exit -15 and no last line (17 runs in 20 of a burst); a fast burst also filled asyncio's
wakeup pipe (``Exception ignored when trying to write to the signal wakeup fd``). Now
the signals stay taken (rdv_tui/cli/stop_signals.py): exit 143, no traceback.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.test_transfer_probe_interrupt import _finish, _start


async def _burst_until_exit(proc: asyncio.subprocess.Process, gap: float) -> None:
    """SIGTERM every ``gap`` s (0: as fast as the loop goes) until ``proc`` ends (3 s).

    Through a pidfd: ``proc.send_signal`` polls (``waitpid``) first, and a child reaped
    there is one asyncio's watcher reports as exit 255."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    pidfd = os.pidfd_open(proc.pid)
    try:
        while proc.returncode is None and loop.time() < deadline:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            except ProcessLookupError:  # it ended (a zombie until asyncio reaps it)
                return
            await asyncio.sleep(gap)
    finally:
        os.close(pidfd)


@pytest.mark.parametrize(("command", "gap"), [("send", 0.0), ("receive", 0.0), ("receive", 0.002)])
async def test_a_sigterm_burst_while_waiting_ends_143(
    url: str, tmp_path: Path, command: str, gap: float
) -> None:
    code = "4391-fox-opal"
    src = tmp_path / "a.txt"
    src.write_text("a\n")
    args = (
        (str(src), "--code", code)
        if command == "send"
        else (code, "--dir", str(tmp_path / "dl"), "--yes")
    )
    proc = await _start(command, *args, "--server", url, "--spaces", "loopback4")
    assert proc.stderr is not None
    seen = b""
    async with asyncio.timeout(20):
        while b"waiting for the" not in seen:  # its loop runs, the signals are taken
            seen += await proc.stderr.read(4096)
    burst = asyncio.create_task(_burst_until_exit(proc, gap))
    rc, err = await _finish(proc)
    await burst
    assert rc == 143, seen.decode() + err
    assert "Traceback" not in err and "Exception ignored" not in err, err
