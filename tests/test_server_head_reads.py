"""The native front reads request heads in small reads, and admitted conns at full size.

asyncio's selector transports read 256 KiB at a time, above glibc's mmap threshold: for a
160-byte request each read mapped and unmapped a buffer of its own (issue 10's connect
time; tests/test_connect_syscalls.py counts those calls in a real dial). A conn the core
admitted (lobby, then relay) goes back to asyncio's own read size, as before.
"""

from __future__ import annotations

import asyncio
import socket

from rdv_core.events import Event, PeerJoined
from rdv_core.server import RdvServer, start_native
from rdv_core.server._http_conn import HEAD_READ_SIZE

ASYNCIO_READ_SIZE = 256 * 1024


async def test_heads_read_small_admitted_conns_read_full() -> None:
    joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        if isinstance(event, PeerJoined) and not joined.done():
            joined.set_result(None)

    server = RdvServer(on_event=on_event)
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        # A plain conn, its head not whole yet: the front's own conn reads small.
        _reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await writer.drain()
        for _ in range(50):
            if front._conns:
                break
            await asyncio.sleep(0.01)
        (conn,) = front._conns
        assert conn._transport is not None
        assert conn._transport.max_size == HEAD_READ_SIZE  # type: ignore[attr-defined]
        writer.close()
        # An rdv request the core admits into the lobby: asyncio's own size again.
        lobby = socket.create_connection(("127.0.0.1", front.port))
        lobby.sendall(
            b"ACCEPT /reads HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n"
            b"Rdv-Self-Addrs: 127.0.0.1:9\r\n\r\n"
        )
        await asyncio.wait_for(joined, 5)
        (peer,) = server._lobby.peers()
        assert peer.transport.max_size == ASYNCIO_READ_SIZE  # type: ignore[attr-defined]
        lobby.close()
    finally:
        await server.close()
        await front.close()


async def test_a_pairing_works_out_each_source_key_once() -> None:
    """The lobby and the pair caps ask for a peer's source keys about six times between
    its request and its ``101``: each address's keys are worked out once (issue 10)."""
    from rdv_core.server._lobby import _ip_keys as addr_keys

    joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        if isinstance(event, PeerJoined) and not joined.done():
            joined.set_result(None)

    server = RdvServer(on_event=on_event)
    front = await start_native(server, host="127.0.0.1", port=0)
    head = b"%s /keys HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n"
    socks = []
    try:
        socks.append(socket.create_connection(("127.0.0.1", front.port)))
        socks[0].sendall(head % b"ACCEPT")
        await asyncio.wait_for(joined, 5)
        before = addr_keys.cache_info()
        socks.append(socket.create_connection(("127.0.0.1", front.port)))
        socks[1].sendall(head % b"DIAL")
        for sock in socks:
            sock.setblocking(False)
        loop = asyncio.get_running_loop()
        for sock in socks:
            assert (await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)).startswith(
                b"HTTP/1.1 101"
            )
        after = addr_keys.cache_info()
        assert after.misses - before.misses <= 1  # the dialer's IP, at most once
        assert after.hits > before.hits
    finally:
        for sock in socks:
            sock.close()
        await server.close()
        await front.close()
