"""Pipelined plain requests on the native front (issue 13, item 1): answered in order
while the client reads, and never piled up in memory when it does not.

Real sockets: a client that writes many requests back to back and reads nothing (its
receive buffer made small), and a second client that checks the server still answers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rdv_core.server._core import RdvServer
from rdv_core.server._http_conn import PIPELINE_BURST, WRITE_HIGH_WATER
from rdv_core.server._native import NativeFront, start_native

from tests.server_support import RawClient

METRICS = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@asynccontextmanager
async def native() -> AsyncIterator[NativeFront]:
    server = RdvServer()
    front = await start_native(server, "127.0.0.1", 0)
    try:
        yield front
    finally:
        await server.close()
        await front.close()


async def connect(front: NativeFront) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    return RawClient(reader, writer)


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with native() as front:
        client = await connect(front)
        count = PIPELINE_BURST * 4 + 3  # several event-loop turns
        client.send((HEALTH + b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n") * count)
        for _ in range(count):
            status, _, body = await client.read_response()
            assert (status, body) == (200, b"ok\n")
            head = await client.read_head()
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 3" in head
        assert await client.read_for(0.1) == b""
        await client.close()


async def test_a_client_that_never_reads_cannot_pile_up_answers() -> None:
    async with native() as front:
        hog = socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(hog, ("127.0.0.1", front.port))
        try:
            # 512 KiB of requests: before the fix the server rendered every answer at
            # once (about 45 MB of them waited in its write buffer, the loop stalled).
            data = METRICS * (512 * 1024 // len(METRICS))
            sending = asyncio.ensure_future(loop.sock_sendall(hog, data))
            worst_buffer = 0
            async with asyncio.timeout(10):
                for _ in range(10):
                    await asyncio.sleep(0.02)
                    for conn in list(front._conns):
                        transport = conn._transport
                        if transport is not None:
                            worst_buffer = max(worst_buffer, transport.get_write_buffer_size())
                    # Meanwhile everybody else is answered promptly.
                    started = loop.time()
                    other = await connect(front)
                    other.send(HEALTH)
                    status, _, _ = await other.read_response(within=1.0)
                    assert status == 200 and loop.time() - started < 1.0
                    await other.close()
            # What waits unsent is bounded by the high-water mark plus one answer.
            assert 0 < worst_buffer < WRITE_HIGH_WATER + 8192
            sending.cancel()
        finally:
            hog.close()
