"""Commands started with stderr closed (``2>&-``): real processes, a real server on loopback.

Python sets ``sys.stderr`` to None then, and ``print(..., file=None)`` writes to stdout:
``rdv accept URL T > copy.iso 2>&-`` wrote "peer connected: p2p ..." into the copy, ahead
of the peer's bytes. ``rdv send FILE 2>&-`` ended at once on a traceback that went
nowhere (exit 1), and its receiver waited for nothing.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.proc_support import kill_left
from tests.session_support import file_digest
from tests.test_cli_readme_pipe_signals import RDV, server_url

__all__ = ["server_url"]  # the fixture, used by name


def _close_stderr() -> None:
    os.close(2)


async def test_pipe_mode_with_stderr_closed_keeps_stdout_for_the_data(server_url: str) -> None:
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", "--spaces", "loopback", "--timeout", "30", server_url, "quiet-1",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        preexec_fn=_close_stderr,
    )  # fmt: skip
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", "--spaces", "loopback", "--timeout", "30", server_url, "quiet-1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        preexec_fn=_close_stderr,
    )  # fmt: skip
    try:
        (got, _), (dial_out, _) = await asyncio.wait_for(
            asyncio.gather(accept.communicate(), dial.communicate(b"the data, alone\n")), 60
        )
    finally:
        await kill_left(accept, dial)
    assert (accept.returncode, dial.returncode) == (0, 0)
    assert got == b"the data, alone\n"
    assert dial_out == b""


async def test_send_and_receive_with_stderr_closed_still_move_the_file(
    url: str, tmp_path: Path
) -> None:
    src = tmp_path / "note.txt"
    src.write_bytes(os.urandom(100_000))
    dl = tmp_path / "dl"
    common = ("--server", url, "--spaces", "loopback")
    send = await asyncio.create_subprocess_exec(
        *RDV, "send", str(src), "--code", "4911-fox-opal", *common,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        preexec_fn=_close_stderr,
    )  # fmt: skip
    receive = await asyncio.create_subprocess_exec(
        *RDV, "receive", "4911-fox-opal", "--dir", str(dl), "--yes", *common,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        preexec_fn=_close_stderr,
    )  # fmt: skip
    try:
        (sent_out, _), (received_out, _) = await asyncio.wait_for(
            asyncio.gather(send.communicate(), receive.communicate()), 60
        )
    finally:
        await kill_left(send, receive)
    assert (send.returncode, receive.returncode) == (0, 0)
    assert file_digest(dl / "note.txt") == file_digest(src)
    assert b"Traceback" not in sent_out + received_out
