"""``rdv send``/``rdv receive --events FILE`` on a full disk (``/dev/full``), as real
processes against a real server on loopback: one warning, then the transfer as always.

Before, every event's write raised inside the event callback: a traceback per event, the
progress view missed every event after it, and closing the file raised once more.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.proc_support import kill_left

RDV = (sys.executable, "-m", "rdv_tui")


async def test_a_full_disk_under_events_costs_one_warning(url: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"payload\n" * 1000)
    (tmp_path / "dl").mkdir()
    code = "5183-owl-rain"
    common = ("--server", url, "--spaces", "loopback4", "--events", "/dev/full")
    env = {**os.environ, "COLUMNS": "80"}
    send = await asyncio.create_subprocess_exec(
        *RDV, "send", str(tmp_path / "a.txt"), "--code", code, *common,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    await asyncio.sleep(0.5)
    receive = await asyncio.create_subprocess_exec(
        *RDV, "receive", code, "--dir", str(tmp_path / "dl"), "--yes", *common,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        (s_out, _), (r_out, _) = await asyncio.wait_for(
            asyncio.gather(send.communicate(), receive.communicate()), 60
        )
    finally:
        await kill_left(send, receive)
    for proc, out in ((send, s_out.decode()), (receive, r_out.decode())):
        assert "Traceback" not in out and "callback failed" not in out, out
        assert proc.returncode == 0, out
        warnings = [line for line in out.splitlines() if "/dev/full" in line]
        assert warnings == [
            "warning: cannot write events to /dev/full: No space left on device; no more "
            "events are written"
        ], out
    assert (tmp_path / "dl" / "a.txt").read_bytes() == (tmp_path / "a.txt").read_bytes()
