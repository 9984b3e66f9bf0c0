"""docs/PROTOCOL.md section 8: the relay passes each end on as what it is.

A side's EOF reaches its partner as a half-close while the other direction goes on (and
nothing the partner sent is reset away); a side's reset reaches its partner as a reset;
a half-open pair whose open direction stays quiet is closed. On both fronts and both
relays (splice, copy), real sockets on loopback.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from rdv_core import events as ev
from rdv_core.server import _relay
from rdv_core.server._splice import AVAILABLE

from tests.server_support import EOF, Env, RawClient, running_server

RELAYS = ["splice", "copy"] if AVAILABLE else ["copy"]


@pytest.fixture(params=[(f, r) for f in ("native", "aiohttp") for r in RELAYS], ids="-".join)
async def relay_env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    front, relay = request.param
    async with running_server(front, splice=relay == "splice") as env:
        yield env


def ended(env: Env) -> list[ev.RelayEnded]:
    return [e for e in env.events if isinstance(e, ev.RelayEnded)]


def reset(client: RawClient) -> None:
    """Close with an RST (SO_LINGER 0): what a killed ``rdv dial`` does (pipe mode arms it)."""
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


async def ending(client: RawClient, within: float = 5.0) -> tuple[int, str]:
    """Read to the end: how many bytes came, and ``eof`` or ``reset``."""
    got = 0
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await client.reader.read(1 << 20)
            except ConnectionResetError:
                return got, "reset"
            if not chunk:
                return got, "eof"
            got += len(chunk)


async def test_a_reset_is_passed_on_as_a_reset(relay_env: Env) -> None:
    """``kill -9`` of a relayed ``rdv dial < disk.iso`` (its socket resets): the server
    ended the accepter with a FIN, and ``rdv accept > copy.iso`` exited 0 with a cut copy."""
    dialer, accepter = await relay_env.relayed_pair("reset")
    dialer.send(b"x" * 65536)
    assert await accepter.read_exactly(65536) == b"x" * 65536
    reset(dialer)
    assert await ending(accepter) == (0, "reset")
    await relay_env.wait_for(lambda: bool(ended(relay_env)))
    assert ended(relay_env)[0].reason.startswith("dialer error: ")


async def test_the_first_eof_resets_nothing_the_other_side_sent(relay_env: Env) -> None:
    """Both sending, the accepter's bytes still unread at the server when the dialer's
    EOF comes: closing both there made the server's kernel reset the accepter, and the
    reset threw away the dialer's bytes it had not read yet (the dialer exited 0)."""
    dialer, accepter = await relay_env.relayed_pair("both")
    block, sent = os.urandom(1 << 20), 0
    with pytest.raises(TimeoutError):  # until every buffer toward the dialer is full
        async with asyncio.timeout(0.3):
            while True:
                accepter.send(block)
                sent += len(block)
                await accepter.writer.drain()
    dialer.send(b"the dialer's whole stream")
    dialer.half_close()
    assert await accepter.read_exactly(25) == b"the dialer's whole stream"
    assert await accepter.read_for(0.2) == EOF.encode()
    accepter.half_close()
    assert await ending(dialer) == (sent, "eof")  # all of the accepter's stream
    await relay_env.wait_for(lambda: bool(ended(relay_env)))
    assert ended(relay_env)[0].reason == "dialer EOF"
    assert ended(relay_env)[0].accepter_to_dialer == sent


async def test_a_half_open_pair_that_stays_quiet_is_closed(
    relay_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that ended its side is not kept waiting forever by a partner that never
    ends its own: once the open direction is quiet for HALF_OPEN_QUIET_S, both close."""
    monkeypatch.setattr(_relay, "HALF_OPEN_QUIET_S", 0.4)
    dialer, accepter = await relay_env.relayed_pair("quiet")
    dialer.half_close()
    assert await accepter.read_for(0.2) == EOF.encode()
    for _ in range(3):  # bytes keep it open
        accepter.send(b"still talking")
        assert await dialer.read_exactly(13) == b"still talking"
        await asyncio.sleep(0.2)
    assert not ended(relay_env)
    assert await ending(dialer) == (0, "eof")
    end = ended(relay_env)[0]
    assert end.reason == "dialer EOF, then quiet for 0.4 s"
