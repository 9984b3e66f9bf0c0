"""A relayed peer that dies with a reset while the server still holds its bytes: the pair
ends, and the other peer gets what was held, then the end. A real ``rdv serve`` process
(uvloop when installed, the splice relay), real client conns on loopback.

``rdv send`` SIGKILLed mid-file on a classic relay (tests/test_transfer_server_gone.py):
its kernel answered the receiver's acks with a reset, and the server's socket for it held
an error behind a queue of unread bytes. uvloop reports that error once and then drops
the descriptor from its poll, after one call of the reader; the splice relay's reader
stopped after four reads (or a short one) and waited for a readiness that never came. The
pair stayed open, and ``rdv receive`` waited mid-record for good (1 run in 40 or so).
"""

from __future__ import annotations

import asyncio
import socket
import struct

from rdv_core.client import Client
from rdv_core.wire import AddrSpace

from tests.test_server_cli import rdv_serve

CHUNK = bytes(256 * 1024)


async def test_a_peer_reset_behind_held_bytes_ends_the_pair() -> None:
    async with rdv_serve([]) as served:
        client = Client(spaces=AddrSpace.NONE, timeout=30)
        dialer, accepter = await asyncio.gather(
            client.dial(served.url, "reset-behind-bytes"),
            client.accept(served.url, "reset-behind-bytes"),
        )
        try:
            assert dialer.is_relay and accepter.is_relay
            accepter.writer.transport.pause_reading()  # type: ignore[attr-defined]
            # Fill every buffer on the way: ours, the server's conn to us (its receive
            # queue), the server's conn to the accepter, the accepter's receive queue.
            sock = dialer.writer.get_extra_info("socket")
            sent = 0
            stalled = 0
            while stalled < 20:
                before = dialer.writer.transport.get_write_buffer_size()
                dialer.writer.write(CHUNK)
                await asyncio.sleep(0.02)
                if dialer.writer.transport.get_write_buffer_size() >= before + len(CHUNK):
                    stalled += 1  # nothing more left us in 20 ms
                else:
                    stalled = 0
                sent += len(CHUNK)
            # Die as a killed process whose peer sent it bytes it never read: a reset.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            dialer.writer.transport.abort()
            accepter.writer.transport.resume_reading()  # type: ignore[attr-defined]
            received = 0
            async with asyncio.timeout(60):
                try:
                    while data := await accepter.reader.read(1 << 20):
                        received += len(data)
                except ConnectionResetError:
                    pass  # the server may end the other side with a reset too
            assert 0 < received <= sent
        finally:
            await dialer.close()
            await accepter.close()
