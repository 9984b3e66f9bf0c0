"""Pipe mode on a classic relay whose conn is reset while our stdin is still being sent.

A relay like the Go server's closes the pair at the first EOF (docs/PROTOCOL.md 8); our bytes that
reach its closed socket make its kernel answer RST, and that RST can overtake the EOF we
had not read yet. The user must still hear that stdin was not delivered (exit 1), not a
bare "connection lost". A real loopback server stands in for the relay's closed side: it
reads a little, answers, then resets (SO_LINGER 0).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from rdv_core.client import Conn
from rdv_core.client._conn import Meta
from rdv_core.client._link import addr_of
from rdv_tui.cli.pipe import UnsentInput, pump


def _feed_forever(fd: int, stop: threading.Event) -> None:
    """Keep stdin open and flowing (it never ends): the upload is always mid-way."""
    block = b"x" * 65536
    while not stop.is_set():
        try:
            os.write(fd, block)
        except OSError:
            return


@pytest.fixture
def endless_stdin() -> Iterator[int]:
    read_fd, write_fd = os.pipe()
    stop = threading.Event()
    feeder = threading.Thread(target=_feed_forever, args=(write_fd, stop), daemon=True)
    feeder.start()
    try:
        yield read_fd
    finally:
        stop.set()
        os.close(read_fd)  # the feeder's next write fails with EPIPE and it returns
        feeder.join(5)
        os.close(write_fd)


def _reset(writer: asyncio.StreamWriter) -> None:
    """RST, no FIN: what a closed socket with unread data sends."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _relay_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Conn:
    """Our end of the conn to the stand-in relay, as the client hands it to pipe mode."""
    sock = writer.get_extra_info("socket")
    local, remote = addr_of(sock.getsockname()), addr_of(sock.getpeername())
    assert local is not None and remote is not None
    return Conn(
        reader=reader,
        writer=writer,
        is_relay=True,
        local_addr=local,
        remote_addr=remote,
        meta=Meta("DIAL", "reset", None, (), ()),
    )


async def _pump_until_unsent(conn: Conn, stdin_fd: int) -> UnsentInput:
    """Run pipe mode on ``conn`` with an endless stdin: it must end with UnsentInput."""
    stdout_fd = os.open(os.devnull, os.O_WRONLY)
    try:
        with pytest.raises(UnsentInput, match="were not delivered") as caught:
            await asyncio.wait_for(
                pump(conn, stdin_fd, stdout_fd, lambda _line: None, interactive=False), 20
            )
    finally:
        os.close(stdout_fd)
    return caught.value


async def test_a_reset_during_the_upload_reports_undelivered_stdin(endless_stdin: int) -> None:
    got_bytes = asyncio.Event()

    async def relay_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"the peer's last words\n")
        await writer.drain()
        got_bytes.set()
        _reset(writer)

    server = await asyncio.start_server(relay_side, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = _relay_conn(*await asyncio.open_connection("127.0.0.1", port))
        unsent = await _pump_until_unsent(conn, endless_stdin)
    finally:
        server.close()
        await server.wait_closed()
    assert got_bytes.is_set()
    assert "ended the conn" in str(unsent) and "--fast-start" in str(unsent)


async def test_a_write_that_meets_the_reset_first_reports_undelivered_stdin(
    endless_stdin: int,
) -> None:
    """The same loss when our write, not our read, meets the reset: the kernel answers the
    write with EPIPE and asyncio ends the transport with BrokenPipeError (seen in CI)."""
    reset_sent = asyncio.Event()

    async def relay_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        _reset(writer)
        reset_sent.set()

    server = await asyncio.start_server(relay_side, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = _relay_conn(reader, writer)  # while the socket still has its addresses
        # Our read must not see the reset first: that is the other test's order.
        transport = writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()
        writer.write(b"x")
        await asyncio.wait_for(reset_sent.wait(), 5)
        await asyncio.sleep(0.05)
        # Take the pending reset off the socket, as a read or a write would.
        sock = writer.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
        writer.write(b"y")  # now EPIPE: the transport dies with BrokenPipeError
        await asyncio.sleep(0)  # asyncio reports the loss to the reader on the next turn
        assert isinstance(reader.exception(), BrokenPipeError)
        await _pump_until_unsent(conn, endless_stdin)
    finally:
        server.close()
        await server.wait_closed()
