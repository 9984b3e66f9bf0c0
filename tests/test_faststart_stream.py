"""The migrating stream on real loopback sockets: full-speed transfers across a switch.

Two :class:`MigratingStream` peers, each path a real TCP conn on 127.0.0.1 (path 0
plays the relay). Both directions run at once while the stream switches to the
direct path at a random moment, and while the direct path is killed right after the
switch: the bytes and their digests always match (docs/PROTOCOL.md section 16.4).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from rdv_core.faststart import RELAY, MigratingStream

DIRECT = 1
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def tcp_pair() -> tuple[Streams, Streams]:
    """Both ends of one real TCP conn on loopback."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    try:
        loop = asyncio.get_running_loop()
        client = asyncio.ensure_future(asyncio.open_connection(*listener.getsockname()[:2]))
        sock, _ = await loop.sock_accept(listener)
        near = await client
        far = await asyncio.open_connection(sock=sock)
        return near, far
    finally:
        listener.close()


@asynccontextmanager
async def two_streams() -> AsyncIterator[tuple[MigratingStream, MigratingStream]]:
    (r0, w0), (r1, w1) = await tcp_pair()
    made: list[MigratingStream] = []

    def make(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> MigratingStream:
        holder: list[MigratingStream] = []

        def relay_done() -> None:
            holder[0].close_path(RELAY, "retired")
            holder[0].core.retain = False

        stream = MigratingStream(reader, writer, first_frames=(), on_relay_done=relay_done)
        holder.append(stream)
        made.append(stream)
        # No HELLO in these tests: the relay's first frame is ordinary.
        first = stream.paths[RELAY].first
        assert first is not None
        stream.paths[RELAY].first = None
        first.cancel()
        return stream

    a, b = make(r0, w0), make(r1, w1)
    try:
        yield a, b
    finally:
        for stream in made:
            stream.abort()
        await asyncio.sleep(0)


async def attach(a: MigratingStream, b: MigratingStream) -> tuple[Streams, Streams]:
    near, far = await tcp_pair()
    a.add_path(DIRECT, *near)
    b.add_path(DIRECT, *far)
    return near, far


async def pump(stream: MigratingStream, size: int, rng: random.Random) -> str:
    """Write ``size`` random bytes in random pieces at full speed; their digest."""
    digest = hashlib.blake2b()
    left = size
    while left:
        n = min(left, rng.choice([1, 100, 4096, 65536, 300_000, 1 << 20]))
        piece = rng.randbytes(n)
        digest.update(piece)
        stream.writer.write(piece)
        await stream.writer.drain()
        left -= n
    stream.writer.write_eof()
    return digest.hexdigest()


async def drain(stream: MigratingStream) -> tuple[int, str]:
    digest = hashlib.blake2b()
    total = 0
    while chunk := await stream.reader.read(1 << 20):
        digest.update(chunk)
        total += len(chunk)
    return total, digest.hexdigest()


async def transfer_across(
    size: int, seed: int, *, switch_after: float, kill: str | None = None
) -> None:
    rng = random.Random(seed)
    async with two_streams() as (a, b):
        jobs = [
            asyncio.ensure_future(pump(a, size, random.Random(rng.random()))),
            asyncio.ensure_future(pump(b, size, random.Random(rng.random()))),
            asyncio.ensure_future(drain(a)),
            asyncio.ensure_future(drain(b)),
        ]
        await asyncio.sleep(switch_after)
        near, far = await attach(a, b)
        a.switch_to(DIRECT)
        await asyncio.sleep(rng.random() * 0.01)
        b.switch_to(DIRECT)
        if kill is not None:
            await asyncio.sleep(0.001)
            victim = near if kill == "near" else far
            victim[1].transport.abort()  # an RST: bytes in flight are gone
        async with asyncio.timeout(60):
            a_sent, b_sent, a_got, b_got = await asyncio.gather(*jobs)
        assert a_got == (size, b_sent), "B to A arrived damaged"
        assert b_got == (size, a_sent), "A to B arrived damaged"
        if kill is None:
            assert a.core.send_path == DIRECT and b.core.send_path == DIRECT
        else:
            assert a.core.send_path == RELAY and b.core.send_path == RELAY


@pytest.mark.parametrize("seed", range(3))
async def test_both_directions_at_full_speed_across_the_switch(seed: int) -> None:
    await transfer_across(16 << 20, seed, switch_after=0.02 * seed)


@pytest.mark.parametrize("kill", ["near", "far"])
async def test_killing_the_direct_conn_right_after_the_switch_loses_nothing(kill: str) -> None:
    await transfer_across(8 << 20, 7, switch_after=0.01, kill=kill)


async def test_the_relay_is_retired_once_the_direct_path_works_both_ways() -> None:
    async with two_streams() as (a, b):
        a.writer.write(b"on the relay\n")
        assert await b.reader.readline() == b"on the relay\n"
        await attach(a, b)
        a.switch_to(DIRECT)
        b.switch_to(DIRECT)
        a.writer.write(b"direct\n")
        assert await b.reader.readline() == b"direct\n"
        async with asyncio.timeout(5):
            while a.core.alive(RELAY) or b.core.alive(RELAY):  # noqa: ASYNC110 - core state
                await asyncio.sleep(0.01)
        b.writer.write(b"still direct\n")
        assert await a.reader.readline() == b"still direct\n"
        assert a.writer.get_extra_info("peername") == a.paths[DIRECT].extra("peername")


async def test_losing_every_path_is_a_reset_for_the_application() -> None:
    async with two_streams() as (a, b):
        b.paths[RELAY].writer.transport.abort()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await a.reader.read(1)


async def test_a_close_waits_until_the_peer_holds_every_byte() -> None:
    """Closed once its last frames were written, a path with the peer's ACKs unread on it
    closed with a reset, which through a relay took what the peer had not read yet (pipe
    mode lost the tail and exited 0: docs/PROTOCOL.md 16.4, the close)."""
    payload = random.Random(3).randbytes(4 << 20)
    async with two_streams() as (a, b):
        a.writer.write(payload)
        a.writer.close()
        await asyncio.sleep(0.3)  # b's application reads nothing: its window closed
        assert not a.paths[RELAY].writer.transport.is_closing()  # the close waits
        got = bytearray()
        async with asyncio.timeout(10):
            while chunk := await b.reader.read(1 << 20):
                got += chunk
            await a.writer.wait_closed()  # no error: every byte was acknowledged
        assert bytes(got) == payload


async def test_a_close_whose_last_bytes_were_never_confirmed_is_an_error() -> None:
    async with two_streams() as (a, b):
        a.writer.write(random.Random(4).randbytes(4 << 20))
        a.writer.close()
        await asyncio.sleep(0.2)
        b.paths[RELAY].writer.transport.abort()  # the peer is gone before it read them
        with pytest.raises(ConnectionResetError, match=r"before it confirmed [0-9]+ bytes"):
            async with asyncio.timeout(5):
                await a.writer.wait_closed()
