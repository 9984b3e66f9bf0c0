"""A cancel that reaches the proxy handshake is never lost (docs/PROTOCOL.md 17.1).

Python 3.11's ``asyncio.wait_for`` returns the inner result when the cancel arrives in
the loop turn in which the inner awaitable completes: the task then carries on as if
never cancelled (a race's loser keeps its tunnel, Ctrl-C is ignored for one attempt).
The proxy here is a real CONNECT proxy on loopback in the test's own loop, so the test
can place the cancel at each loop turn after the proxy has answered.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from rdv_core.client import _proxy
from rdv_core.client._proxy import open_tunnel
from rdv_core.errors import ServerConnectError
from rdv_core.wire import parse_proxy_url, parse_server_url

#: Loop turns after the proxy's answer at which to cancel: enough to cover the answer's
#: read, the handshake's end and the caller's wake-up (3.11 swallowed it at turns 1-3).
TURNS = 12


async def test_a_cancel_at_any_turn_of_the_connect_answer_cancels_the_attempt() -> None:
    answered = asyncio.Event()
    handlers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        answered.set()

    proxy_server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = proxy_server.sockets[0].getsockname()[1]
    proxy = parse_proxy_url(f"http://127.0.0.1:{port}")
    server = parse_server_url("http://127.0.0.1:9/")
    lost: list[int] = []
    try:
        for turns in range(TURNS):
            answered.clear()
            task = asyncio.create_task(open_tunnel(proxy, server))
            await asyncio.wait_for(answered.wait(), 60)
            for _ in range(turns):
                await asyncio.sleep(0)
            if task.done():
                task.result()[0].close()
                continue
            assert task.cancel()
            try:
                sock, _ = await task
            except asyncio.CancelledError:
                continue
            sock.close()
            lost.append(turns)
    finally:
        for writer in handlers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        proxy_server.close()
        await proxy_server.wait_closed()
    assert lost == [], f"open_tunnel returned a tunnel after cancel() at loop turns {lost}"


async def test_a_silent_proxy_is_still_a_timeout_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # The timeout path that asyncio.timeout replaced wait_for on: a proxy that accepts
    # and never answers is named, and the attempt's socket is closed.
    monkeypatch.setattr(_proxy, "CONNECT_ANSWER_TIMEOUT", 0.3)
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    proxy_server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = proxy_server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ServerConnectError, match=r"did not answer CONNECT within 0\.3 s"):
            await _proxy.open_tunnel(
                parse_proxy_url(f"http://127.0.0.1:{port}"), parse_server_url("http://127.0.0.1:9/")
            )
    finally:
        for writer in held:
            writer.close()
        proxy_server.close()
        await proxy_server.wait_closed()
