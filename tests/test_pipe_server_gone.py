"""Pipe mode on a relay whose server is stopped names the server, on both sides.

Since the server resets relayed pairs when it stops (so no peer takes its end for the other
peer's end of stream), ``rdv accept`` said "connection lost: Connection reset by peer" and
``rdv dial`` "the relay ended the conn ... (the peer's side probably ended first)": each
user blamed the other, who was fine. One TCP connect to the relay's address tells.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from tests.proc_support import kill_left
from tests.test_server_cli import rdv_serve

RDV = [sys.executable, "-m", "rdv_tui"]


async def test_a_stopped_relay_server_is_named_on_both_sides() -> None:
    async with rdv_serve([]) as served:
        common = ["--spaces", "none", "--timeout", "20", served.url, "server-gone"]
        accept = await asyncio.create_subprocess_exec(
            *RDV, "accept", *common,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        dial = await asyncio.create_subprocess_exec(
            *RDV, "dial", *common,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # The accepter's stdin stays open: a classic relay ends the pair at a side's EOF.
        assert dial.stdin is not None and accept.stdout is not None
        try:
            dial.stdin.write(b"first\n")
            await dial.stdin.drain()
            async with asyncio.timeout(30):
                assert await accept.stdout.readline() == b"first\n"
            assert await served.stop(signal.SIGTERM) == 0
            with_more = b"x" * 65536
            for _ in range(64):  # stdin goes on: the dialer meets the reset while sending
                if dial.returncode is not None:
                    break
                try:
                    dial.stdin.write(with_more)
                    await dial.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    break
                await asyncio.sleep(0.01)
            async with asyncio.timeout(30):
                _, a_err = await accept.communicate()  # its stdin closes only now
                d_err = await dial.stderr.read() if dial.stderr else b""
                await dial.wait()
        finally:
            await kill_left(accept, dial)
    port = served.port
    for name, proc, err in (("accept", accept, a_err), ("dial", dial, d_err)):
        text = err.decode()
        assert proc.returncode == 1, (name, text)
        assert f"the relay server went away (127.0.0.1:{port}: connection refused)" in text, (
            name,
            text,
        )
        assert "probably ended first" not in text and "reset by peer" not in text, (name, text)
