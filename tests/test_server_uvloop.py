"""The server on uvloop (what ``rdv serve`` picks when uvloop is installed).

uvloop's transports are not asyncio's classes, so the takeover (``set_protocol``),
BufferedProtocol reads and flow control get their own run here.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.server_support import EOF, Env, rdv_request, running_server

uvloop = pytest.importorskip("uvloop")


def on_uvloop(scenario: Callable[[Env], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with running_server("native") as env:
            await scenario(env)
            await env.server.close()
            assert env.server.open_conns == 0

    uvloop.run(main())


def test_lobby_rules_on_uvloop() -> None:
    async def scenario(env: Env) -> None:
        first = await env.request("ACCEPT", "dup")
        await env.wait_lobby(1)
        second = await env.request("ACCEPT", "dup")
        assert (await first.read_until_eof()).endswith(b"replaced by another conn")
        second.send(b"!")
        assert (await second.read_until_eof()).endswith(
            b"conn must idle while waiting for response header"
        )
        await env.wait_lobby(0)
        waiting = await env.request("DIAL", "w")
        await env.wait_lobby(1)
        await env.server.close()
        assert (await waiting.read_until_eof()).endswith(b"rdv server shutting down, try again")

    on_uvloop(scenario)


def test_relay_on_uvloop() -> None:
    async def scenario(env: Env) -> None:
        dialer, accepter, _, _ = await env.pair("p2p")
        dialer.send(b"OTHER 1.2.3.4:5\n")
        assert await accepter.read_for(1.0) == EOF.encode()
        dialer, accepter, _, _ = await env.pair("relay")
        payload = os.urandom(16 << 20)
        dialer.send(b"CONTINUE\nsame segment")
        assert await accepter.read_exactly(21) == b"CONTINUE\nsame segment"
        dialer.send(payload)
        accepter.send(payload[::-1])
        got_a = await accepter.read_exactly(len(payload), within=30)
        got_d = await dialer.read_exactly(len(payload), within=30)
        assert hashlib.sha256(got_a).digest() == hashlib.sha256(payload).digest()
        assert got_d == payload[::-1]
        accepter.half_close()
        assert await dialer.read_for(1.0) == EOF.encode()
        stats = env.server.stats()
        assert (stats.p2p_total, stats.relay_total) == (1, 1)
        assert stats.bytes_relayed == 2 * len(payload) + len("same segment")

    on_uvloop(scenario)


def test_tls_relay_on_uvloop(tmp_path: Path) -> None:
    """What ``rdv serve --tls-cert ...`` runs when uvloop is installed."""
    from tests.test_server_tls import _tls_client, make_cert

    cert, key = make_cert(tmp_path)

    async def main() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = RdvServer()
        front = await start_native(server, ssl=context)
        try:
            accepter = await _tls_client(front.port, cert, rdv_request("ACCEPT", "/t"))
            await Env("native", server, front.port, "").wait_lobby(1)
            dialer = await _tls_client(front.port, cert, rdv_request("DIAL", "/t"))
            await dialer.read_head()
            await accepter.read_head()
            payload = os.urandom(8 << 20)
            dialer.send(b"CONTINUE\n" + payload)
            accepter.send(payload[::-1])
            assert await accepter.read_exactly(9 + len(payload), within=30) == (
                b"CONTINUE\n" + payload
            )
            assert await dialer.read_exactly(len(payload), within=30) == payload[::-1]
        finally:
            await server.close()
            await front.close()

    uvloop.run(main())
