"""``rdv serve`` out of file descriptors, against clients that connect and say nothing.

A real process whose fd limit is set low (soft and hard), filled with silent conns, and
more silent conns queued in the listen backlog behind them: the README says a health check
is then still answered at once (``200 ok``), newcomers told ``503``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time

import pytest

from tests.proc_support import kill_left
from tests.server_support import RawClient
from tests.test_server_fd_exhaustion import FD_LIMIT, HEALTH, _connect, _low_fd_limit

#: Silent conns queued in the backlog beyond what the server can accept.
QUEUED = 40


@pytest.mark.timeout(90)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_silent_conns_in_the_backlog_do_not_hold_up_health_checks(loop: str) -> None:
    # Before: the one reserve descriptor waited 0.5 s for each silent queued conn in turn,
    # so this health check, behind 40 of them, was answered after about 20 s.
    pytest.importorskip(loop)
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0", "--loop", loop],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_low_fd_limit,
    )
    silent: list[RawClient] = []
    try:
        assert process.stderr is not None
        async with asyncio.timeout(20):
            line = (await process.stderr.readline()).decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        for _ in range(FD_LIMIT + QUEUED):
            silent.append(await _connect(port))
        await asyncio.sleep(0.3)
        health = await _connect(port)
        started = time.monotonic()
        health.send(HEALTH)
        status, _, body = await health.read_response(within=10.0)
        assert (status, body) == (200, b"ok\n")
        assert time.monotonic() - started < 2.0
        await health.close()
        process.terminate()
        async with asyncio.timeout(10):
            text = (await process.stderr.read()).decode()
            assert await process.wait() == 0
        assert text.count("out of file descriptors") == 1, text
    finally:
        await kill_left(process)
        for client in silent:
            client.writer.transport.abort()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.timeout(90)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_a_probe_port_out_of_fds_answers_and_logs_nothing_twice(loop: str) -> None:
    # Before: the probe port's accept loop (loop.create_server) at EMFILE logged a traceback
    # per attempt on asyncio's loop (about 1,800 lines in 5 s) and never answered; uvloop
    # closed the conn unanswered. Now it sheds like the main port: 503, one warning in all.
    pytest.importorskip(loop)
    probe_port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0", "--loop", loop],
        "--probe-port", str(probe_port),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_low_fd_limit,
    )  # fmt: skip
    silent: list[RawClient] = []
    try:
        assert process.stderr is not None
        async with asyncio.timeout(20):
            line = (await process.stderr.readline()).decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        for _ in range(FD_LIMIT + 8):
            silent.append(await _connect(port))
        await asyncio.sleep(0.3)
        observed = b"GET /.rdv/observed HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):
            probe = await _connect(probe_port)
            probe.send(observed)
            status, _, body = await probe.read_response(within=5.0)
            assert (status, body) == (503, b"rdv server at capacity, try again later\n")
            await probe.close()
        for client in silent:
            client.writer.transport.abort()
        silent.clear()
        await asyncio.sleep(0.5)
        probe = await _connect(probe_port)
        probe.send(observed)
        assert (await probe.read_response(within=5.0))[0] == 200
        await probe.close()
        process.terminate()
        async with asyncio.timeout(10):
            text = (await process.stderr.read()).decode()
            assert await process.wait() == 0
        assert "Traceback" not in text, text
        assert text.count("out of file descriptors") == 1, text
    finally:
        await kill_left(process)
        for client in silent:
            client.writer.transport.abort()
