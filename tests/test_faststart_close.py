"""Fast start's close on real loopback sockets: a complete close is never a reset.

docs/PROTOCOL.md 16.4, the close: once the peer confirmed every byte, our side of each
path ends with a FIN and what the peer still sends is read until its own end. Closed at
once instead, a socket with the peer's late frames unread on it (its ACK ticks, a PING)
closed with a reset, and the reset dropped what our kernel had not sent yet (our last
ACK among it): the peer reported bytes that had arrived as lost. The peer here is played
by hand on the other end of a real TCP conn, frame by frame.
"""

from __future__ import annotations

import asyncio

from rdv_core.faststart import RELAY, FrameParser, Kind, MigratingStream
from rdv_core.faststart._frames import data_frame, u64_frame

from tests.test_faststart_stream import tcp_pair

#: Our end of the path must come well within the close's linger (CLOSE_LINGER_S).
CLOSE_BOUND_S = 5.0


async def test_a_complete_close_reads_the_peers_late_frames_instead_of_resetting() -> None:
    (r0, w0), (peer_r, peer_w) = await tcp_pair()
    stream = MigratingStream(r0, w0)
    first = stream.paths[RELAY].first
    assert first is not None
    stream.paths[RELAY].first = None  # no HELLO here: the peer's first frame is data
    first.cancel()
    try:
        peer_w.write(data_frame(0, b"hi") + u64_frame(Kind.EOF, 2))
        async with asyncio.timeout(5):
            assert await stream.reader.read() == b"hi"
        stream.writer.write(b"yo")
        stream.writer.close()  # waits for the peer's ACK of our 2 bytes
        parser, got_eof = FrameParser(), False
        async with asyncio.timeout(5):
            while not got_eof:
                chunk = await peer_r.read(65536)
                assert chunk, "our stream ended before its EOF frame"
                got_eof = any(f.kind is Kind.EOF for f in parser.feed(chunk))
        # The peer confirms our bytes, and its frames keep coming a while (a PING, ACK
        # ticks): they reach a socket that has just been closed (or is half-closed).
        peer_w.write(u64_frame(Kind.ACK, 2))
        for token in range(40):
            await asyncio.sleep(0.002)
            peer_w.write(u64_frame(Kind.PING, token))
            await peer_w.drain()
        peer_w.write_eof()
        async with asyncio.timeout(CLOSE_BOUND_S):
            while await peer_r.read(65536):  # our end: a FIN, never a reset
                pass
            await stream.writer.wait_closed()  # no error: the peer confirmed every byte
    finally:
        stream.abort()
        peer_w.close()
        await asyncio.sleep(0)


def _stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> MigratingStream:
    stream = MigratingStream(reader, writer)
    first = stream.paths[RELAY].first
    assert first is not None
    stream.paths[RELAY].first = None  # no HELLO here: the peer's first frame is data
    first.cancel()
    return stream


async def test_a_close_with_nothing_to_confirm_sends_its_last_ack_first() -> None:
    """``rdv dial --fast-start`` of 1 byte into ``rdv accept < /dev/null``: the accepter,
    with nothing of its own to confirm, closed at once, before its writer task sent the
    ACK of that byte, and the dialer said "connection lost before it confirmed 1 bytes"
    (exit 1 with everything delivered; 5 cells of the pipe matrix)."""
    (r0, w0), (r1, w1) = await tcp_pair()
    a, b = _stream(r0, w0), _stream(r1, w1)
    try:
        b.writer.write_eof()  # `< /dev/null`: its side ended long before
        a.writer.write(b"x")
        async with asyncio.timeout(CLOSE_BOUND_S):
            assert await b.reader.read(100) == b"x"
            a.writer.close()  # its EOF comes on its own, as pipe mode's does after stdin
            assert await b.reader.read(100) == b""
            b.writer.close()  # in the turn the EOF was read: b's writer task is not yet
            await b.writer.wait_closed()
            await a.writer.wait_closed()  # no error: b's ACK went out before its FIN
    finally:
        a.abort()
        b.abort()
        await asyncio.sleep(0)
