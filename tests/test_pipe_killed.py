"""Pipe mode's end of stream when a side is killed or a classic relay ends the pair: real
``rdv dial`` / ``rdv accept`` processes against a real server on loopback (the rows of the
matrix in :mod:`tests.pipe_matrix` that were wrong).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from tests.proc_support import kill_left
from tests.test_pipe_cli import RDV


async def test_a_sender_killed_with_sigkill_is_no_end_of_stream(url: str) -> None:
    """``kill -9`` of ``rdv dial < disk.iso`` on a direct conn: the kernel closed its socket
    with a FIN, and ``rdv accept > copy.iso`` exited 0 with the copy cut where the kill
    came. The socket is armed to end with a reset (SO_LINGER 0) while the pipe runs."""
    common = ("--spaces", "loopback4", "--timeout", "20", url, "killed-9")
    accept = await asyncio.create_subprocess_exec(
        *RDV, "accept", *common,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    dial = await asyncio.create_subprocess_exec(
        *RDV, "dial", *common,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert dial.stdin is not None and accept.stdout is not None and accept.stderr is not None
    try:
        dial.stdin.write(b"x" * 65536)  # more would follow: the kill comes mid-stream
        await dial.stdin.drain()
        received = 0
        while received < 65536:
            chunk = await asyncio.wait_for(accept.stdout.read(65536), 20)
            assert chunk, "the accepter's stdout ended before the bytes arrived"
            received += len(chunk)
        dial.send_signal(signal.SIGKILL)
        await asyncio.wait_for(dial.wait(), 5)
        await asyncio.wait_for(asyncio.gather(accept.stdout.read(), accept.wait()), 5)
        said = (await accept.stderr.read()).decode()
    finally:
        await kill_left(dial, accept)
    assert accept.returncode == 1, said
    assert said.strip().splitlines()[-1].startswith("rdv accept: connection lost"), said


async def test_a_classic_relay_names_the_stdin_it_cut_in_flight(url: str, tmp_path: Path) -> None:
    """``rdv dial --spaces none < 5MiB`` into ``rdv accept < /dev/null``: the relay ends the
    pair at the accepter's EOF (docs/PROTOCOL.md section 8) with most of the file in
    flight. The dialer said "0 bytes of stdin were not delivered (at least; stdin had not
    ended)" (its stdin had ended, and 4 MiB were lost), or "connection lost: Connection
    reset by peer" when the relay's reset came first; both now name the bytes in flight."""
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024))
    common = ("--spaces", "none", "--timeout", "20", url, "relay-cut")
    out = tmp_path / "out.bin"
    with source.open("rb") as in_file, out.open("wb") as out_file:
        accept = await asyncio.create_subprocess_exec(
            *RDV, "accept", *common,
            stdin=asyncio.subprocess.DEVNULL, stdout=out_file,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        dial = await asyncio.create_subprocess_exec(
            *RDV, "dial", *common,
            stdin=in_file, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    try:
        (_, d_err), _ = await asyncio.wait_for(
            asyncio.gather(dial.communicate(), accept.communicate()), 20
        )
    finally:
        await kill_left(dial, accept)
    last = d_err.decode().strip().splitlines()[-1]
    if out.read_bytes() == source.read_bytes():  # the relay took it all before the EOF
        assert dial.returncode == 0, last
        return
    assert dial.returncode == 1, last
    # All of stdin unsent (the accepter's EOF came first) is counted; bytes in flight are
    # named so. Never "0 bytes", "stdin had not ended" or "connection lost".
    assert last.startswith("rdv dial: the "), last
    assert "were not delivered" in last, last
    assert ": 0 bytes" not in last and "stdin had not ended" not in last, last
