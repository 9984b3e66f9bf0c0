"""``rdv serve`` out of file descriptors (issue 13, item 2): health checks are still
answered, other newcomers get a clear ``503`` instead of a hang, one warning is logged,
and the server accepts again once conns close.

A real process whose fd limit is set low (soft and hard, so that ``rdv serve`` cannot
raise it), filled by conns that trickle an unfinished request head (slowloris).
"""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import sys

import pytest

from tests.proc_support import kill_left
from tests.server_support import RawClient, rdv_request

FD_LIMIT = 64
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


async def _connect(port: int) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return RawClient(reader, writer)


@pytest.mark.timeout(60)  # before the fix the test client waited forever
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_out_of_fds_health_answered_newcomers_told_then_recovers(loop: str) -> None:
    pytest.importorskip(loop)
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0", "--loop", loop],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_low_fd_limit,
    )
    trickling: list[RawClient] = []
    try:
        async with asyncio.timeout(40):  # a server that stops answering fails, not hangs
            await _exercise(process, trickling)
    finally:
        await kill_left(process)
        for client in trickling:
            client.writer.transport.abort()


async def _exercise(process: asyncio.subprocess.Process, trickling: list[RawClient]) -> None:
    assert process.stderr is not None
    async with asyncio.timeout(20):
        line = (await process.stderr.readline()).decode()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    assert match, line
    port = int(match.group(1))
    # More unfinished heads than the server has descriptors.
    for _ in range(FD_LIMIT + 16):
        client = await _connect(port)
        client.send(b"GET /healthz HTTP/1.1\r\n")
        trickling.append(client)
    await asyncio.sleep(0.3)
    for _ in range(3):
        health = await _connect(port)
        health.send(HEALTH)
        status, _, body = await health.read_response(within=2.0)
        assert (status, body) == (200, b"ok\n")
        await health.close()
    newcomer = await _connect(port)
    newcomer.send(rdv_request("ACCEPT", "/late"))
    status, _, body = await newcomer.read_response(within=2.0)
    assert (status, body) == (503, b"rdv server at capacity, try again later\n")
    await newcomer.close()
    for client in trickling:
        await client.close()
    trickling.clear()
    # Accepting again: a request waits in the lobby.
    await asyncio.sleep(0.3)
    waiting = await _connect(port)
    waiting.send(rdv_request("ACCEPT", "/back"))
    assert await waiting.read_for(0.5) == b""
    await waiting.close()
    process.terminate()
    async with asyncio.timeout(10):
        text = (await process.stderr.read()).decode()
        assert await process.wait() == 0
    assert text.count("out of file descriptors") == 1, text
    assert re.search(r"accepting conns again \(\d+ answered 503", text), text
