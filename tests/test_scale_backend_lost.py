"""What ``rdv dial`` says when its backend dies behind the real HAProxy of ``deploy/``.

A client waiting in the lobby of a backend that is killed (a crash, ``kill -9``, an OOM)
gets HAProxy's ``502``; once the health checks see no backend left, new requests get its
``503``. HAProxy's own answers are HTML pages, so the user read ``rdv dial: server
rejected: 502 Bad Gateway: <html><body><h1>502 Bad Gateway</h1>\\x0aThe server returned
...``: the config now gives them in rdv's words, one plain line (README "Deploying").
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.balancer_support import (
    BACKEND_ARGS,
    backends,
    balancer,
    missing_binary,
    new_tokens,
    wait_until,
)

WENT_AWAY = "rdv backend went away before answering (restarted or stopped): try again"
NONE_UP = "no rdv backend is up: try again later"


async def start_dial(url: str, token: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "rdv_tui", "dial", "--spaces", "none", url, token),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def stderr_lines(process: asyncio.subprocess.Process) -> list[str]:
    async with asyncio.timeout(30):
        _, err = await process.communicate()
    return err.decode().splitlines()


async def test_dial_hears_its_backend_died(tmp_path: Path) -> None:
    reason = missing_binary("haproxy")
    if reason is not None:
        pytest.skip(reason)
    async with backends(tmp_path, BACKEND_ARGS["haproxy"], count=1) as pool:
        (backend,) = pool
        async with balancer("haproxy", tmp_path, [backend.addr] * 3) as lb:
            (token,) = new_tokens(1)
            dial = await start_dial(lb.url, token)
            try:
                await wait_until(lambda: [j["token"] for j in backend.joined()] == [token], 20)
                backend.process.send_signal(signal.SIGKILL)
                lines = await stderr_lines(dial)
            finally:
                if dial.returncode is None:
                    dial.kill()
                    await dial.wait()
            assert dial.returncode == 1, lines
            assert len(lines) == 1, lines
            assert lines[0].startswith("rdv dial: server rejected: 502 "), lines
            assert lines[0].endswith(f": {WENT_AWAY}"), lines
            # The checks take the dead backend out: nothing is left to answer.
            await wait_until(lambda: "is DOWN" in lb.log_path.read_text(), 15)
            again = await start_dial(lb.url, token)
            lines = await stderr_lines(again)
            assert again.returncode == 1, lines
            assert len(lines) == 1 and lines[0].endswith(f": {NONE_UP}"), lines
