"""What ``rdv dial`` says when its backend dies behind the real HAProxy and nginx of
``deploy/``.

A client waiting in the lobby of the one backend, killed (a crash, ``kill -9``, an OOM),
gets the balancer's ``502``; so do new requests while no backend is up (HAProxy: ``503``
once its health checks see none). The balancers' own answers are HTML pages, so the user
read ``rdv dial: server rejected: 502 Bad Gateway: <html><body><h1>502 Bad
Gateway</h1>\\x0aThe server returned ...`` (nginx: ``<html>\\x0d\\x0a<head>...``): the
configs now give them in rdv's words, one plain line (README "Deploying").
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
    BALANCERS,
    backends,
    balancer,
    missing_binary,
    new_tokens,
    wait_until,
)

#: What a client hears: when its backend died, then when it asks again.
HEARD = {
    "haproxy": (
        "502 Bad Gateway or Proxy Error: "
        "rdv backend went away before answering (restarted or stopped): try again",
        "503 Service Unavailable: no rdv backend is up: try again later",
    ),
    "nginx": (
        "502 Bad Gateway: no rdv backend answered (restarted, stopped or none up): try again",
    )
    * 2,
}


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


@pytest.mark.parametrize("kind", BALANCERS)
async def test_dial_hears_its_backend_died(kind: str, tmp_path: Path) -> None:
    reason = missing_binary(kind)
    if reason is not None:
        pytest.skip(reason)
    died, none_up = HEARD[kind]
    async with backends(tmp_path, BACKEND_ARGS[kind], count=1) as pool:
        (backend,) = pool
        async with balancer(kind, tmp_path, [backend.addr] * 3) as lb:
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
            assert lines == [f"rdv dial: server rejected: {died}"], lines
            if kind == "haproxy":
                # The checks take the dead backend out: nothing is left to answer.
                await wait_until(lambda: "is DOWN" in lb.log_path.read_text(), 15)
            again = await start_dial(lb.url, token)
            lines = await stderr_lines(again)
            assert again.returncode == 1, lines
            assert lines == [f"rdv dial: server rejected: {none_up}"], lines
