"""Ctrl-C (SIGINT) in pipe mode, as a user meets it: real ``rdv dial`` / ``rdv accept``
processes against a real server on loopback.

The README's first pipe example moves a file (``rdv accept ... > copy.iso``,
``rdv dial ... < disk.iso``); these tests interrupt one side mid-transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
import termios
import time
from collections.abc import AsyncIterator

import pytest

from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.proc_support import kill_left

RDV = [sys.executable, "-m", "rdv_tui"]


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        yield front.url
    finally:
        await server.close()
        await front.close()


def _unread(fd: int) -> int:
    """Bytes waiting in the pipe whose read end is ``fd``."""
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


async def _until(condition: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


async def _exit_code(proc: asyncio.subprocess.Process, within: float) -> int | None:
    """The exit code, or None if the process is still running after ``within`` s."""
    try:
        return await asyncio.wait_for(proc.wait(), within)
    except TimeoutError:
        return None


async def test_ctrl_c_exits_while_stdout_is_stalled(server_url: str) -> None:
    """``rdv accept URL T | less``, the reader paused (or a terminal stopped with Ctrl-S),
    then Ctrl-C: rdv must exit. It used to hang for good: the coroutine that writes
    stdout left a ``with ThreadPoolExecutor`` on cancellation, whose exit joins the
    writer thread, blocked in ``write()``, on the event loop's own thread."""
    out_r, out_w = os.pipe()  # accept's stdout: a reader that never reads
    feed_r, feed_w = os.pipe()  # dial's stdin: we keep it flowing
    os.set_blocking(feed_w, False)
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", "--spaces", "loopback", "--timeout", "20", server_url, "stalled",
        stdin=asyncio.subprocess.PIPE, stdout=out_w, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--spaces", "loopback", "--timeout", "20", server_url, "stalled",
        stdin=feed_r, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    os.close(out_w)
    os.close(feed_r)
    chunk = b"x" * 65536
    try:

        def fed_and_full() -> bool:
            # BlockingIOError: dial is not reading, all between us and the pipe is full.
            with contextlib.suppress(BlockingIOError):
                os.write(feed_w, chunk)
            return _unread(out_r) > 0

        await _until(fed_and_full, 20, "nothing reached accept's stdout")
        # Keep feeding until accept's stdout pipe stops filling: its writer is blocked.
        last, still = -1, 0
        while still < 10:
            fed_and_full()
            now = _unread(out_r)
            still = still + 1 if now == last else 0
            last = now
            await asyncio.sleep(0.05)
        accept.send_signal(signal.SIGINT)
        code = await _exit_code(accept, 5)
        assert code == 130, "rdv accept did not exit on SIGINT while its stdout was stalled"
    finally:
        await kill_left(accept, dial)
        os.close(out_r)
        os.close(feed_w)


@pytest.mark.parametrize(
    ("interrupted", "sig", "code"),
    [
        ("dial", signal.SIGINT, 130),
        ("accept", signal.SIGINT, 130),
        # `timeout 60 rdv dial ...`, `kill`: the default action ended the process and the
        # kernel sent a FIN, the same silent truncation.
        ("dial", signal.SIGTERM, 143),
        # The terminal closed, or `ssh host rdv dial ... < disk.iso` lost its link: the
        # same default action, the same FIN: the peer exited 0 with a truncated copy.
        ("dial", signal.SIGHUP, 129),
        ("accept", signal.SIGHUP, 129),
    ],
)
async def test_ctrl_c_mid_transfer_is_no_clean_end_for_the_peer(
    server_url: str, interrupted: str, sig: signal.Signals, code: int
) -> None:
    """A file moving p2p (``rdv dial < disk.iso`` / ``rdv accept > copy.iso``), one side
    interrupted: the other side must not exit 0 as if the stream had ended. It did: the
    interrupted side closed its conn gracefully (a FIN), which the peer cannot tell from
    the end of the file, so ``copy.iso`` was silently truncated with exit 0."""
    feed_r, feed_w = os.pipe()  # the dialer's endless input
    os.set_blocking(feed_w, False)
    token = f"interrupt-{interrupted}-{sig}"
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", "--spaces", "loopback", "--timeout", "20", server_url, token,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--spaces", "loopback", "--timeout", "20", server_url, token,
        stdin=feed_r, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    os.close(feed_r)
    assert accept.stdout is not None and accept.stderr is not None and dial.stderr is not None
    received = 0

    async def drain() -> None:
        nonlocal received
        assert accept.stdout is not None
        while data := await accept.stdout.read(1 << 16):
            received += len(data)

    reading = asyncio.create_task(drain())
    try:
        chunk = b"y" * 65536
        deadline = time.monotonic() + 20
        while received < 4 * 1024 * 1024:  # the transfer is well under way
            assert time.monotonic() < deadline, "the transfer did not get going"
            try:
                os.write(feed_w, chunk)
            except BlockingIOError:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)
        victim, peer = (dial, accept) if interrupted == "dial" else (accept, dial)
        victim.send_signal(sig)
        assert await _exit_code(victim, 5) == code
        peer_code = await _exit_code(peer, 10)
        peer_err = (await peer.stderr.read()).decode() if peer.stderr else ""
        assert "peer connected: p2p" in peer_err, peer_err
        assert peer_code == 1, f"the peer of rdv {interrupted} exited {peer_code}: {peer_err}"
        assert "connection lost" in peer_err, peer_err
    finally:
        await kill_left(accept, dial)
        reading.cancel()
        os.close(feed_w)


async def test_under_nohup_sighup_is_ignored_and_the_transfer_ends_whole(
    server_url: str,
) -> None:
    """``nohup rdv dial ... < disk.iso &``: the user asked for the terminal's close to be
    ignored; SIGHUP then stops nothing and the stream ends as the input does."""
    feed_r, feed_w = os.pipe()
    token = "nohup-dial"
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", "--spaces", "loopback", "--timeout", "20", server_url, token,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--spaces", "loopback", "--timeout", "20", server_url, token,
        stdin=feed_r, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    os.close(feed_r)
    assert accept.stdout is not None and accept.stderr is not None and dial.stderr is not None
    try:
        os.write(feed_w, b"z" * 1000)
        got = await asyncio.wait_for(accept.stdout.readexactly(1000), 20)  # under way
        dial.send_signal(signal.SIGHUP)
        os.write(feed_w, b"z" * 1000)
        os.close(feed_w)
        feed_w = -1
        got += await asyncio.wait_for(accept.stdout.read(), 20)
        assert await _exit_code(dial, 20) == 0, (await dial.stderr.read()).decode()
        assert await _exit_code(accept, 20) == 0, (await accept.stderr.read()).decode()
        assert got == b"z" * 2000
    finally:
        await kill_left(accept, dial)
        if feed_w >= 0:
            os.close(feed_w)
