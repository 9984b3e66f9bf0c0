"""Pipe mode's end of stream when a side is killed or a classic relay ends the pair: real
``rdv dial`` / ``rdv accept`` processes against a real server on loopback (the rows of the
matrix in :mod:`tests.pipe_matrix` that were wrong).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
from pathlib import Path

import pytest

from rdv_core.faststart import FrameParser, Kind
from rdv_core.faststart._frames import hello_frame, u64_frame

from tests.proc_support import kill_left
from tests.server_support import running_server
from tests.test_pipe_cli import RDV


@pytest.mark.parametrize("spaces", ["loopback4", "none"], ids=["direct", "relay"])
async def test_a_sender_killed_with_sigkill_is_no_end_of_stream(url: str, spaces: str) -> None:
    """``kill -9`` of ``rdv dial < disk.iso`` on a direct conn: the kernel closed its socket
    with a FIN, and ``rdv accept > copy.iso`` exited 0 with the copy cut where the kill
    came. The socket is armed to end with a reset (SO_LINGER 0) while the pipe runs. On a
    classic relay the server passed that reset on as a FIN (the same exit 0): it passes it
    on as a reset (docs/PROTOCOL.md section 8)."""
    common = ("--spaces", spaces, "--timeout", "20", url, "killed-9")
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
    last = said.strip().splitlines()[-1]
    if spaces == "loopback4":
        assert last.startswith("rdv accept: connection lost"), said
    else:  # a classic relay's reset: the accepter's open stdin may have had bytes in flight
        assert last.startswith("rdv accept: the relay ended the conn"), said


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


async def test_a_classic_relay_cuts_no_stream_silently(url: str, tmp_path: Path) -> None:
    """``rdv accept --spaces none < 5MiB`` into ``rdv dial --spaces none < /dev/null >
    copy``: the server closed the pair at the dialer's EOF with the accepter's bytes unread,
    its kernel reset the accepter's conn, and the accepter exited 0 with 4 of 5 MiB
    delivered. Now the EOF is passed on as a half-close: what the accepter sent arrives or
    the accepter says it did not, and a copy cut by the accepter's stop is no end of stream
    for the dialer (the accepter resets its conn; the server passes the reset on)."""
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024))
    common = ("--spaces", "none", "--timeout", "20", url, "relay-both-ends")
    out = tmp_path / "out.bin"
    with source.open("rb") as in_file, out.open("wb") as out_file:
        accept = await asyncio.create_subprocess_exec(
            *RDV, "accept", *common,
            stdin=in_file, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        dial = await asyncio.create_subprocess_exec(
            *RDV, "dial", *common,
            stdin=asyncio.subprocess.DEVNULL, stdout=out_file, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    try:
        (_, d_err), (_, a_err) = await asyncio.wait_for(
            asyncio.gather(dial.communicate(), accept.communicate()), 20
        )
    finally:
        await kill_left(dial, accept)
    said = f"dial: {d_err.decode().strip()}\naccept: {a_err.decode().strip()}"
    if out.read_bytes() == source.read_bytes():
        assert (dial.returncode, accept.returncode) == (0, 0), said
        return
    # Cut: neither side may exit 0, and the accepter names what it did not deliver.
    assert (dial.returncode, accept.returncode) == (1, 1), said
    assert "were not delivered" in a_err.decode().strip().splitlines()[-1], said


async def test_fast_start_names_bytes_the_peer_never_confirmed(tmp_path: Path) -> None:
    """``rdv dial --fast-start < 64KiB``: its stdin sent, the peer's stream ended, the peer
    gone (reset) before it acknowledged our bytes. The close's wait for that ACK ended
    with an error that Conn.close() swallowed: exit 0 for bytes that may never have
    arrived (docs/PROTOCOL.md 16.4). Now exit 1, naming the unconfirmed bytes. The peer is
    played by hand through a real server: HELLO, its EOF, then a reset and no ACK."""
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(65536))
    async with running_server("native") as env:
        token = "fs-unconfirmed"
        accepter = await env.request("ACCEPT", token, headers=[("Rdv-Extensions", "fast-start/1")])
        url = f"http://127.0.0.1:{env.port}"
        with source.open("rb") as in_file:
            dial = await asyncio.create_subprocess_exec(
                *RDV, "dial", "--fast-start", "--spaces", "none", "--timeout", "20", url, token,
                stdin=in_file, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        try:
            assert b"fast-start/1" in await accepter.read_head(10)
            assert await accepter.read_exactly(9, 10) == b"CONTINUE\n"
            accepter.send(hello_frame(b"A", os.urandom(16)) + u64_frame(Kind.EOF, 0))
            parser, ended = FrameParser(), False
            async with asyncio.timeout(10):
                while not ended:  # the dialer's HELLO, its 64 KiB and its EOF: no ACK
                    chunk = await accepter.reader.read(65536)
                    assert chunk, "the dialer's stream ended before its EOF frame"
                    ended = any(f.kind is Kind.EOF for f in parser.feed(chunk))
            sock = accepter.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            accepter.writer.transport.abort()
            _, err = await asyncio.wait_for(dial.communicate(), 20)
        finally:
            await kill_left(dial)
    last = err.decode().strip().splitlines()[-1]
    assert dial.returncode == 1, last
    assert last.startswith("rdv dial: connection lost before it confirmed "), last
