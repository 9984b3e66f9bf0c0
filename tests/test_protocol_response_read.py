"""Reading the server's response head off a real conn (client/_response.py).

The rest of a head that is already in is taken in one piece (issue 10,
docs/notes/issue-10-connect-fifth.md); these pin that it reads exactly what the line-by-line
reading read: the same head, the same errors at the same bounds, and the bytes after the
head left in the reader, however the server's bytes are split.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from rdv_core.client._link import open_stream
from rdv_core.client._response import read_response_head
from rdv_core.errors import RdvProtocolError
from rdv_core.wire import MAX_HEADER_BLOCK, MAX_HEADERS, HeadParser

HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: rdv/1\r\nRdv-Peer-Addrs: 1.2.3.4:5\r\n\r\n"


async def _read(pieces: list[bytes]) -> tuple[object, bytes]:
    """Serve ``pieces`` (one send each, a loop turn apart); the head read and what follows."""
    ours, theirs = socket.socketpair()
    reader, writer = await open_stream(ours)
    try:
        theirs.setblocking(False)

        async def send() -> None:
            for piece in pieces:
                theirs.send(piece)
                await asyncio.sleep(0.01)
            theirs.shutdown(socket.SHUT_WR)

        sender = asyncio.create_task(send())
        try:
            head: object = await read_response_head(reader, "testing")
        except RdvProtocolError as exc:
            head = f"error: {exc}"
        await sender
        return head, await reader.read()
    finally:
        writer.close()
        theirs.close()


def _whole(data: bytes) -> object:
    parser = HeadParser("response")
    return parser.feed(data)


@pytest.mark.parametrize(
    "head",
    [
        HEAD,
        b"HTTP/1.1 101 ok\n\n",
        b"HTTP/1.1 101 ok\r\n\r\n",
        b"HTTP/1.1 101 ok\nA: b\n\n",
        b"HTTP/1.1 101 ok\r\nA: b\n\r\n",
        b"HTTP/1.1 101 ok\nA: b\r\n\n",
    ],
)
@pytest.mark.parametrize("split", [None, 1, 15, -3, -1])
async def test_the_same_head_and_the_bytes_after_it_stay(head: bytes, split: int | None) -> None:
    data = head + b"rdv/1 relayed\n"
    pieces = [data] if split is None else [data[:split], data[split:]]
    got, after = await _read(pieces)
    assert got == _whole(head)
    assert after == b"rdv/1 relayed\n"


async def test_bounds_are_those_of_the_line_by_line_reading() -> None:
    many = b"HTTP/1.1 101 ok\r\n" + b"A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    got, _ = await _read([many])
    assert got == "error: too many response header lines"
    most = b"HTTP/1.1 101 ok\r\n" + b"A: b\r\n" * MAX_HEADERS + b"\r\n"
    got, _ = await _read([most])
    assert got == _whole(most)
    big = b"HTTP/1.1 101 ok\r\nA: " + b"x" * MAX_HEADER_BLOCK + b"\r\n\r\n"
    got, _ = await _read([big])
    assert got == "error: response header block too large"
    got, _ = await _read([HEAD[:30]])
    assert got == "error: the server closed the connection inside its response"
    got, _ = await _read([b"HTTP/1.1 1x1 ok\r\n\r\n"])
    assert isinstance(got, str) and got.startswith("error: bad response from the server")
