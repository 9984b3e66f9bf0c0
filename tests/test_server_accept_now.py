"""The native front makes a plain-TCP conn's transport in its accept callback, without a
task (issue 10's connect time, docs/notes/issue-10-connect-fifth.md): every loopback
connect, p2p or relay, pays the server's accept path once per peer.

Real sockets on loopback, a real front; the loop's task factory records every task
created while the conns are served (the clients use the loop's socket calls: no tasks).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Generator
from typing import Any

from rdv_core.server import RdvServer, start_native

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def _health(port: int) -> bytes:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, HEALTH)
        answer = b""
        while chunk := await loop.sock_recv(sock, 4096):
            answer += chunk
        return answer
    finally:
        sock.close()


async def test_plain_conns_are_served_without_a_task() -> None:
    loop = asyncio.get_running_loop()
    created: list[str] = []
    factory = loop.get_task_factory()

    def record(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kwargs)

    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0)
    loop.set_task_factory(record)
    try:
        answers = [await _health(front.port) for _ in range(3)]
    finally:
        loop.set_task_factory(factory)
        await server.close()
        await front.close()
    assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"ok\n") for a in answers)
    assert created == []  # before: one NativeFront._connect task per conn
