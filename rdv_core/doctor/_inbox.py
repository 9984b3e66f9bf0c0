"""The doctor's listener on the shared port: inbound conns matched to the nonces we await.

The dial-back and the hairpin probe both end in a conn to our shared port that must carry
the nonce we chose (docs/PROTOCOL.md section 15.2): anything else is a stranger, counted
and closed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Final

from rdv_core.client._sockets import LISTEN_BACKLOG, reuse_socket

#: How long a conn may take to deliver its greeting (and the hairpin probe to arrive).
HAIRPIN_TIMEOUT_S: Final = 1.5
HAIRPIN_GREETING: Final = b"RDV-HAIRPIN "


class Inbox:
    """The listeners on P (IPv4, and IPv6 where the host has it): match inbound conns to
    the nonces we are waiting for."""

    def __init__(self, socks: Sequence[socket.socket]) -> None:
        self.socks = tuple(socks)
        self.waiting: dict[bytes, asyncio.Future[None]] = {}
        self.strangers = 0

    def expect(self, greeting: bytes, nonce: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[greeting + nonce.encode() + b"\n"] = future
        return future

    async def serve(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            for sock in self.socks:
                tasks.create_task(self._accept(sock, tasks))

    async def _accept(self, sock: socket.socket, tasks: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(sock)
            tasks.create_task(self._read(conn))

    async def _read(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        data = b""
        try:
            async with asyncio.timeout(HAIRPIN_TIMEOUT_S):
                while not data.endswith(b"\n") and len(data) < 100:
                    chunk = await loop.sock_recv(conn, 100 - len(data))
                    if not chunk:
                        break
                    data += chunk
        except (TimeoutError, OSError):
            pass
        finally:
            conn.close()
        future = self.waiting.pop(data, None)
        if future is not None and not future.done():
            future.set_result(None)
        else:
            self.strangers += 1


def listener6(port: int) -> socket.socket | None:
    """An IPv6-only listener on ``port`` beside the IPv4 one, for a dial-back over IPv6.

    None where the host has no IPv6 (then no IPv6 server can be measured anyway).
    """
    try:
        sock = reuse_socket(socket.AF_INET6)
    except OSError:
        return None
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(("::", port, 0, 0))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        return None
    return sock
