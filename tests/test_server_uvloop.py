"""The server on uvloop (what ``rdv serve`` picks when uvloop is installed).

uvloop's transports are not asyncio's classes, so the takeover (``set_protocol``),
BufferedProtocol reads and flow control get their own run here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

uvloop = pytest.importorskip("uvloop")

try:
    from server_support import EOF, Env, running_server
except ImportError:  # tests/ is a package
    from tests.server_support import EOF, Env, running_server


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
