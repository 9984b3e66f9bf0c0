"""``rdv accept ... > copy.iso`` on a disk that fills up: real processes, a real server on
loopback, the copy on a real tmpfs of 1 MiB (root only).

The accepter said "writing stdout failed: No space left on device" (exit 1) and closed the
conn with a FIN when it had read all the dialer sent: the dialer took it for the end of a
whole transfer and exited 0, the copy cut at the disk's size. The accepter resets the conn
now; the dialer then said "connection lost: Connection lost", asyncio's words after ours.
The accepter's stdin stays open, as the README's example has it (a terminal): its side
does not end before the dialer's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.proc_support import kill_left
from tests.test_cli_readme_pipe_signals import RDV, server_url
from tests.test_session_disk import needs_root, tmpfs

__all__ = ["server_url"]  # the fixture, used by name


@needs_root
async def test_a_full_disk_under_stdout_fails_both_sides_once(
    server_url: str, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "small", "1m") as small:
        copy = os.open(small / "copy.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            accept = await asyncio.create_subprocess_exec(
                *RDV, "accept", "--spaces", "loopback", "--timeout", "30", server_url, "full-1",
                stdin=asyncio.subprocess.PIPE, stdout=copy, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        finally:
            os.close(copy)
        dial = await asyncio.create_subprocess_exec(
            *RDV, "dial", "--spaces", "loopback", "--timeout", "30", server_url, "full-1",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert dial.stdin is not None
            try:
                # A little over the disk: the failing write is about the last, and nothing
                # the dialer sent is left unread (a close then sends a FIN, not a RST).
                dial.stdin.write(os.urandom((1 << 20) + (96 << 10)))
                await dial.stdin.drain()
                dial.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the dialer ended before it took it all: what we test
            # The accepter's stdin stays open until the end (communicate() would close it).
            assert accept.stderr is not None
            (_, d_err), a_err, _ = await asyncio.wait_for(
                asyncio.gather(dial.communicate(), accept.stderr.read(), accept.wait()), 60
            )
        finally:
            await kill_left(accept, dial)
    said_a, said_d = a_err.decode(), d_err.decode()
    assert accept.returncode == 1, said_a
    assert "rdv accept: writing stdout failed: No space left on device" in said_a, said_a
    assert dial.returncode == 1, said_d
    last = said_d.strip().splitlines()[-1]
    assert last.startswith("rdv dial: connection lost"), said_d
    assert "lost: Connection lost" not in said_d, said_d
    assert sys.platform != "linux" or "peer connected: p2p" in said_d, said_d
