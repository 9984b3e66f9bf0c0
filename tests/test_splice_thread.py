"""Bulk flows of the zero-copy relay moved by threads (rdv_core.server._splice_thread).

docs/PROTOCOL.md section 8 through the threaded path, on asyncio's loop and on uvloop,
with real sockets on loopback: a bulk pair is moved by a thread, a server's close ends
it at once (no thread left after), a reset is passed on as a reset and a half-close as
a half-close while the other way goes on, the bound on threads leaves the pairs beyond
it on the loop, and ``RDV_RELAY_THREADS=0`` keeps every flow on the loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from rdv_core import events as ev
from rdv_core.server._relay import Relayer
from rdv_core.server._splice import AVAILABLE, SplicedConn
from rdv_core.server._splice_thread import MAX_RELAY_THREADS, SMALL_READS_BACK, THREADS_ENV

from tests.server_support import EOF, Env, RawClient, drain, running_server

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="splice(2) is Linux-only")

Scenario = Callable[[Env], Coroutine[Any, Any, None]]
LOOPS = ["asyncio", "uvloop"]
BLOCK = os.urandom(1 << 18)


def relay_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rdv-relay-")]


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    yield
    assert relay_threads() == []


def run(loop: str, scenario: Scenario) -> None:
    factory = pytest.importorskip("uvloop").new_event_loop if loop == "uvloop" else None

    async def main() -> None:
        async with running_server("native", splice=True) as env:
            await scenario(env)
            await env.server.close()
            assert env.server.open_conns == 0

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def relayer(env: Env, i: int = 0) -> Relayer:
    return list(env.server._pairs.values())[i]


def moving(relayer: Relayer) -> bool:
    """D -> A is moved by a thread now."""
    conn = relayer.dialer.transport
    assert isinstance(conn, SplicedConn)
    return conn.outflow is not None and conn.outflow.mover is not None


def ended(env: Env) -> list[ev.RelayEnded]:
    return [e for e in env.events if isinstance(e, ev.RelayEnded)]


async def pump(client: RawClient, total: int) -> str:
    digest = hashlib.sha256()
    for sent in range(0, total, len(BLOCK)):
        piece = BLOCK[: min(len(BLOCK), total - sent)]
        digest.update(piece)
        client.send(piece)
        await client.writer.drain()
    return digest.hexdigest()


async def bulk_until_moved(env: Env, dialer: RawClient, accepter: RawClient) -> int:
    """Bulk D -> A until a thread moves it (A reads all); the bytes sent."""
    sent = 0
    async with asyncio.timeout(5):
        while not moving(relayer(env)):
            dialer.send(BLOCK)
            await dialer.writer.drain()
            await drain(accepter, len(BLOCK))
            sent += len(BLOCK)
    return sent


@pytest.mark.parametrize("loop", LOOPS)
def test_a_bulk_pair_is_moved_by_a_thread_that_a_close_ends_at_once(loop: str) -> None:
    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("moved")
        for _ in range(5):  # interactive traffic stays on the loop
            dialer.send(b"ping")
            assert await accepter.read_exactly(4) == b"ping"
        assert not moving(relayer(env)) and relay_threads() == []
        total = 16 << 20
        sent, got = await asyncio.gather(pump(dialer, total), drain(accepter, total))
        assert sent == got
        pipes = env.server._pairing.pipes
        assert pipes is not None and pipes.moved >= 1
        await bulk_until_moved(env, dialer, accepter)
        assert len(relay_threads()) == 1
        # Every byte counted, the thread's included (the server's stats).
        stats = env.server.stats().pairs[0]
        got_d2a = stats.bytes_dialer_to_accepter
        dialer.send(BLOCK)
        await drain(accepter, len(BLOCK))
        assert env.server.stats().pairs[0].bytes_dialer_to_accepter == got_d2a + len(BLOCK)
        # A stops reading: the thread waits for A's room (D's bytes pile up on the way).
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                while True:
                    dialer.send(BLOCK)
                    await dialer.writer.drain()
        assert moving(relayer(env))
        assert 0 < relayer(env).accepter.transport.get_write_buffer_size() <= 256 * 1024
        # A shutdown resets the pair: the thread is stopped and joined in the call.
        t0 = time.monotonic()
        relayer(env).close("server shutting down", reset=True)
        assert time.monotonic() - t0 < 0.05
        assert relay_threads() == []
        assert (await accepter.read_for(2.0)).endswith(EOF.encode())
        assert pipes.threads == MAX_RELAY_THREADS  # every thread given back

    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_interactive_again_the_flow_goes_back_to_the_loop(loop: str) -> None:
    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("moved-back")
        await bulk_until_moved(env, dialer, accepter)
        for _ in range(SMALL_READS_BACK):  # small reads in a row: the loop's again
            dialer.send(b"ping")
            assert await accepter.read_exactly(4) == b"ping"
        await env.wait_for(lambda: not moving(relayer(env)))
        assert relay_threads() == []
        dialer.send(b"ping")  # and relayed on by the loop
        assert await accepter.read_exactly(4) == b"ping"

    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reset_through_a_thread_is_passed_on_as_a_reset(loop: str) -> None:
    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("moved-rst")
        await bulk_until_moved(env, dialer, accepter)
        sock = dialer.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        dialer.writer.transport.abort()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(3):
                while await accepter.reader.read(1 << 16):
                    pass
        await env.wait_for(lambda: bool(ended(env)))
        assert ended(env)[0].reason.startswith("dialer error")

    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_half_close_through_a_thread_is_passed_on_and_the_other_way_goes_on(
    loop: str,
) -> None:
    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("moved-eof")
        sent = await bulk_until_moved(env, dialer, accepter)
        tail = os.urandom(3 << 20)
        dialer.send(tail)
        dialer.half_close()
        assert await accepter.read_until_eof() == tail  # all of it, then the EOF
        assert not moving(relayer(env)) and relay_threads() == []
        accepter.send(b"still here")  # A -> D goes on
        assert await dialer.read_exactly(10) == b"still here"
        assert not ended(env)
        accepter.half_close()
        assert await dialer.read_for(2.0) == EOF.encode()
        await env.wait_for(lambda: bool(ended(env)))
        end = ended(env)[0]
        assert end.reason == "dialer EOF"
        assert end.dialer_to_accepter == sent + len(tail)

    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_pairs_beyond_the_bound_stay_on_the_loop(loop: str) -> None:
    async def scenario(env: Env) -> None:
        pipes = env.server._pairing.pipes
        assert pipes is not None
        pipes.threads = 1  # the bound (MAX_RELAY_THREADS), reached by one flow
        first = await env.relayed_pair("bound-1")
        await bulk_until_moved(env, *first)
        second = await env.relayed_pair("bound-2")
        total = 8 << 20
        sent, got = await asyncio.gather(pump(second[0], total), drain(second[1], total))
        assert sent == got  # relayed on the loop path
        assert len(relay_threads()) == 1 and pipes.moved == 1
        assert not moving(relayer(env, 1))
        for client in (*first, *second):
            await client.close()

    run(loop, scenario)


def test_the_environment_switch_keeps_every_flow_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(THREADS_ENV, "0")

    async def scenario(env: Env) -> None:
        pipes = env.server._pairing.pipes
        assert pipes is not None and pipes.threads == 0
        dialer, accepter = await env.relayed_pair("no-threads")
        total = 8 << 20
        sent, got = await asyncio.gather(pump(dialer, total), drain(accepter, total))
        assert sent == got
        assert pipes.moved == 0 and relay_threads() == []

    run("asyncio", scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_with_no_thread_to_be_had_the_loop_path_keeps_the_rules(loop: str) -> None:
    """The existing relay tests now run bulk in threads: the loop path's bulk (the bound
    reached) keeps the half-close and the reset here."""

    async def scenario(env: Env) -> None:
        pipes = env.server._pairing.pipes
        assert pipes is not None
        pipes.threads = 0
        dialer, accepter = await env.relayed_pair("loop-path")
        tail = os.urandom(4 << 20)
        dialer.send(tail)
        dialer.half_close()
        assert await accepter.read_until_eof() == tail
        assert pipes.moved == 0 and relay_threads() == []
        accepter.send(BLOCK * 8)
        await drain(dialer, len(BLOCK) * 8)  # A -> D goes on, in bulk
        sock = accepter.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        accepter.writer.transport.abort()
        assert (await dialer.read_for(2.0)).endswith(EOF.encode())
        await env.wait_for(lambda: bool(ended(env)))
        assert ended(env)[0].reason.startswith("accepter error")
        assert pipes.moved == 0

    run(loop, scenario)
