"""Reused record buffers on the sender (rdv_core/session/_data_out.py, RecordRing).

A record's buffer may be rewritten only once the kernel took every byte of it: uvloop's
transport (and asyncio's from 3.12) keeps views of what the socket did not take. Real
loopback sockets on both loops; the peer first reads nothing (so the transport holds
records), then everything, and every record must still open to what was sealed.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from rdv_core.session._channel import SocketChannel
from rdv_core.session._crypto import Opener, Sealer
from rdv_core.session._data_out import RING_SLOTS, RecordRing
from rdv_core.session._outbox import Outbox
from rdv_core.session._record import RecordSplitter

KEY = bytes(range(32))
PLAIN = 64 * 1024
RECORDS = 96  # 6 MiB: more than the loopback socket buffers take without a reader

LOOPS = ["asyncio", "uvloop"]


def _run(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(main())


def _plain(i: int) -> bytes:
    return bytes([i % 251]) * PLAIN


async def _ring_over_loopback() -> tuple[RecordRing, Outbox, socket.socket, asyncio.StreamWriter]:
    listener = socket.create_server(("127.0.0.1", 0))
    _reader, writer = await asyncio.open_connection(*listener.getsockname())
    peer, _ = listener.accept()
    listener.close()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    # Taken over by hand, as open_channel does for asyncio's transports: uvloop's
    # transport keeps views of unsent bytes (as asyncio's does from 3.12 on).
    transport: Any = writer.transport  # uvloop's is no asyncio.Transport subclass
    channel = SocketChannel(transport, transport.get_protocol(), b"")
    transport.set_protocol(channel)
    outbox = Outbox()
    outbox.open(channel, Sealer(KEY))
    return RecordRing(outbox), outbox, peer, writer


async def _read_all(peer: socket.socket, count: int) -> list[bytes]:
    opener = Opener(KEY)
    splitter = RecordSplitter()
    plains: list[bytes] = []
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    while len(plains) < count:
        data = await loop.sock_recv(peer, 1 << 20)
        assert data, "the sender hung up early"
        for ciphertext in splitter.feed(data):
            out = bytearray(len(ciphertext))
            size = opener.open_into(ciphertext, memoryview(out))
            plains.append(bytes(out[:size]))
    return plains


@pytest.mark.parametrize("loop", LOOPS)
def test_records_held_by_the_transport_are_not_rewritten(loop: str) -> None:
    async def main() -> None:
        ring, outbox, peer, writer = await _ring_over_loopback()
        try:
            # The peer reads nothing yet: most records stay in the transport's buffer.
            for i in range(RECORDS):
                ring.send(memoryview(_plain(i)))
            assert outbox.channel is not None
            taken = outbox.channel.taken()
            assert taken is not None and taken < outbox.channel.written
            plains = await _read_all(peer, RECORDS)
            assert plains == [_plain(i) for i in range(RECORDS)]
        finally:
            peer.close()
            writer.close()

    _run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_buffers_are_reused_once_the_kernel_took_them(loop: str) -> None:
    async def main() -> None:
        ring, outbox, peer, writer = await _ring_over_loopback()
        reading = asyncio.ensure_future(_read_all(peer, RECORDS))
        seen: list[bytearray] = []  # strong references: ids stay unique
        try:
            for i in range(RECORDS):
                ring.send(memoryview(_plain(i)))
                seen.extend(b for b, _ in ring._slots if all(b is not s for s in seen))
                await outbox.drain()
            plains = await reading
            assert plains == [_plain(i) for i in range(RECORDS)]
            # Draining after each record (as the sender does) leaves the kernel holding
            # all but the last few: far fewer buffers than records.
            assert len(seen) <= 2 * RING_SLOTS
        finally:
            reading.cancel()
            peer.close()
            writer.close()

    _run(loop, main)


def test_the_plaintext_fits_the_record_header() -> None:
    """A ring buffer of a bigger record serves a smaller one (the file's last chunk)."""

    async def main() -> None:
        ring, _outbox, peer, writer = await _ring_over_loopback()
        try:
            sent = [os.urandom(size) for size in (PLAIN, PLAIN, PLAIN, 1000, 5)]
            for plain in sent:
                ring.send(memoryview(plain))
                await asyncio.sleep(0.01)
            assert await _read_all(peer, len(sent)) == sent
        finally:
            peer.close()
            writer.close()

    _run("asyncio", main)
