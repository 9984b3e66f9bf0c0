"""The zero-copy relay (rdv_core.server._splice) and its fallback, on both loops.

docs/PROTOCOL.md section 8 with real sockets on loopback: every scenario runs with
splice on and off (``RdvServer(splice=False)``, the copy relay), on asyncio's loop and
on uvloop: bytes intact both ways at volume, an EOF passed on as a half-close after what
was in flight is delivered and the second EOF closing the pair, resets, descriptors back
to their count before the pairs, and out of descriptors for pipes (the relay goes on by
copy).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import socket
import ssl
import struct
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from rdv_core import events as ev
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.server._relay import Relayer
from rdv_core.server._splice import AVAILABLE, ENV_SWITCH, SplicedConn
from rdv_core.wire import Addr, build_proxy_v1, build_proxy_v2

from tests.server_support import (
    EOF,
    Env,
    RawClient,
    drain,
    open_fds,
    rdv_request,
    running_server,
)

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="splice(2) is Linux-only")

Scenario = Callable[[Env], Coroutine[Any, Any, None]]
LOOPS = ["asyncio", "uvloop"]
MODES = ["splice", "copy"]


def run(loop: str, mode: str, scenario: Scenario, front: str = "native") -> None:
    """``scenario`` against a fresh server on ``loop`` with the relay ``mode``; then the
    server is closed and every conn it owned must be gone."""
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        factory = uvloop.new_event_loop
    else:
        factory = None

    async def main() -> None:
        async with running_server(front, splice=mode == "splice") as env:
            await scenario(env)
            await env.server.close()
            assert env.server.open_conns == 0

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def relayer(env: Env) -> Relayer:
    return next(iter(env.server._pairs.values()))


def ended(env: Env) -> list[ev.RelayEnded]:
    return [e for e in env.events if isinstance(e, ev.RelayEnded)]


def check_mode(env: Env, mode: str) -> None:
    """The pair runs on the relay asked for (a fallback would hide a broken splice)."""
    spliced = isinstance(relayer(env).dialer.transport, SplicedConn)
    assert spliced == (mode == "splice")
    assert isinstance(relayer(env).accepter.transport, SplicedConn) == spliced


async def pump(client: RawClient, total: int, seed: int) -> str:
    """Send ``total`` varied bytes; return their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(1 << 18)
    sent = 0
    while sent < total:
        shift = (sent + seed) % 997  # a reordered or stale read would show
        piece = (block[shift:] + block[:shift])[: min(len(block), total - sent)]
        digest.update(piece)
        client.send(piece)
        await client.writer.drain()
        sent += len(piece)
    return digest.hexdigest()


async def settled_fds(env: Env) -> int:
    """This process's fds once the server owns no conn and holds no free pipe.

    Take a baseline after a first pair: it opens what a loop opens once (libuv's spare
    descriptor for EMFILE).
    """
    await env.wait_for(lambda: env.server.open_conns == 0 and not env.server._pairs)
    await asyncio.sleep(0.05)  # the clients' transports finish closing
    pipes = env.server._pairing.pipes
    assert pipes is None or pipes.free == 0
    return open_fds()


def reset(client: RawClient) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


both_loops_and_modes = pytest.mark.parametrize(
    ("loop", "mode"), [(loop, mode) for loop in LOOPS for mode in MODES]
)


@both_loops_and_modes
@pytest.mark.parametrize("front", ["native", "aiohttp"])
def test_volume_both_ways_intact(loop: str, mode: str, front: str) -> None:
    total = 24 << 20

    async def scenario(env: Env) -> None:
        dialer, accepter, _, _ = await env.pair("bulk")
        # The first bytes ride with the command: A gets them right after CONTINUE.
        dialer.send(b"CONTINUE\nfirst")
        assert await accepter.read_exactly(14) == b"CONTINUE\nfirst"
        check_mode(env, mode)
        async with asyncio.timeout(60):
            sent_d, sent_a, got_a, got_d = await asyncio.gather(
                pump(dialer, total, 1),
                pump(accepter, total, 2),
                drain(accepter, total),
                drain(dialer, total),
            )
        assert (sent_d, sent_a) == (got_a, got_d)
        pair = env.server.stats().pairs[0]
        assert (pair.bytes_dialer_to_accepter, pair.bytes_accepter_to_dialer) == (
            total + 5,
            total,
        )
        dialer.half_close()
        assert await accepter.read_for(2.0) == EOF.encode()
        accepter.half_close()  # the second EOF ends the pair (section 8)
        assert await dialer.read_for(2.0) == EOF.encode()
        await env.wait_for(lambda: bool(ended(env)))
        assert env.server.stats().bytes_relayed == 2 * total + 5

    run(loop, mode, scenario, front)


@both_loops_and_modes
@pytest.mark.parametrize("first", ["dialer", "accepter"])
def test_a_half_close_is_passed_on_and_the_other_way_goes_on(
    loop: str, mode: str, first: str
) -> None:
    """A half-close is passed on (section 8): the side that ends gets its bytes delivered
    whole, however far behind its reader is, then its EOF; the other way goes on to its
    own EOF, which ends the pair. (The first EOF closed both: the other side's bytes
    still unread at the server made the server's kernel reset that side, and the reset
    threw away the tail it had not read yet.)"""
    total = 8 << 20

    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("eof")
        check_mode(env, mode)
        ender, other = (dialer, accepter) if first == "dialer" else (accepter, dialer)
        other.send(b"before")  # the other way flows until the end
        assert await ender.read_exactly(6) == b"before"

        async def send_then_end() -> str:
            digest = await pump(ender, total, 3)
            ender.half_close()
            return digest

        # Nobody reads for a while: the EOF comes while bytes are on the way.
        sent = asyncio.ensure_future(send_then_end())
        await asyncio.sleep(0.3)
        got = await drain(other, total)
        assert got == await sent
        assert await other.read_for(2.0) == EOF.encode()
        other.send(b"after")  # the other way is still open
        assert await ender.read_exactly(5) == b"after"
        assert not ended(env)
        other.half_close()
        assert await ender.read_for(2.0) == EOF.encode()
        await env.wait_for(lambda: bool(ended(env)))
        end = ended(env)[0]
        assert end.reason == f"{first} EOF"
        counted = (end.dialer_to_accepter, end.accepter_to_dialer)
        assert counted == ((total, 11) if first == "dialer" else (11, total))

    run(loop, mode, scenario)


@both_loops_and_modes
def test_bytes_held_for_a_side_that_ends_are_flushed(loop: str, mode: str) -> None:
    """D half-closes while the server still holds A's bytes for D, then A ends too: D
    gets A's stream whole, every byte the server read from A, then EOF."""

    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("held")
        check_mode(env, mode)
        block = os.urandom(1 << 20)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                while True:  # until every buffer on the way is full
                    accepter.send(block)
                    await accepter.writer.drain()
        held = relayer(env).dialer.transport.get_write_buffer_size()
        assert held <= 256 * 1024
        dialer.half_close()
        accepter.half_close()  # ends its side too: the pair ends (section 8)
        # All of A's stream now (the kernels' buffers held megabytes more), then EOF.
        into = bytearray()
        async with asyncio.timeout(10):
            while chunk := await dialer.reader.read(1 << 20):
                into += chunk
        got = bytes(into)
        whole, rest = divmod(len(got), len(block))
        assert got == block * whole + block[:rest]
        await env.wait_for(lambda: bool(ended(env)))
        end = ended(env)[0]
        assert end.reason == "dialer EOF"
        # Every byte the server read from A reached D, what it held included.
        assert len(got) == end.accepter_to_dialer

    run(loop, mode, scenario)


@both_loops_and_modes
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "server-holding-bytes"])
def test_reset_closes_the_pair(loop: str, mode: str, busy: bool) -> None:
    async def scenario(env: Env) -> None:
        warm_up, other = await env.relayed_pair("warm-up")
        await warm_up.close()
        await other.close()
        baseline = await settled_fds(env)
        dialer, accepter = await env.relayed_pair("rst")
        check_mode(env, mode)
        if busy:
            # D's bytes pile up for A, which reads nothing, then A resets.
            block = os.urandom(1 << 20)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    while True:
                        dialer.send(block)
                        await dialer.writer.drain()
        else:
            dialer.send(b"x")
            assert await accepter.read_exactly(1) == b"x"
        reset(accepter)
        got = await dialer.read_for(3.0)
        assert got.endswith(EOF.encode())
        await env.wait_for(lambda: len(ended(env)) == 2)
        reason = ended(env)[1].reason
        # An idle conn's reset is read; a full one's shows when writing to it.
        assert reason.startswith("accepter error") or (busy and reason == "accepter closed")
        await dialer.close()
        # What the server held for A (in a pipe, or its transport's buffer) is freed.
        assert await settled_fds(env) == baseline

    run(loop, mode, scenario)


@both_loops_and_modes
def test_idle_timeout_and_activity(loop: str, mode: str) -> None:
    async def scenario(env: Env) -> None:
        env.server.idle_timeout = 0.3
        dialer, accepter = await env.relayed_pair("idle")
        check_mode(env, mode)
        for _ in range(4):  # activity keeps the pair past the timeout
            await asyncio.sleep(0.15)
            accepter.send(b"k")
            assert await dialer.read_exactly(1) == b"k"
        assert await accepter.read_for(2.0) == EOF.encode()
        assert await dialer.read_for(1.0) == EOF.encode()
        assert ended(env)[0].reason == "idle timeout"

    run(loop, mode, scenario)


@both_loops_and_modes
def test_descriptors_back_to_baseline_after_many_pairs(loop: str, mode: str) -> None:
    pairs = 40

    async def one(env: Env, i: int) -> None:
        dialer, accepter = await env.relayed_pair(f"many-{i}")
        payload = os.urandom(64 * 1024 + i)
        dialer.send(payload)
        accepter.send(payload[::-1])
        assert await accepter.read_exactly(len(payload)) == payload
        assert await dialer.read_exactly(len(payload)) == payload[::-1]
        kind = i % 4
        if kind == 0:
            dialer.half_close()
        elif kind == 1:
            accepter.half_close()
        elif kind == 2:
            reset(dialer)
        else:
            await accepter.close()
        assert (await (accepter if kind % 2 == 0 else dialer).read_for(3.0)).endswith(EOF.encode())
        for client in (dialer, accepter):
            client.writer.transport.abort()

    async def scenario(env: Env) -> None:
        await one(env, pairs)
        baseline = await settled_fds(env)
        await asyncio.gather(*(one(env, i) for i in range(pairs)))
        assert await settled_fds(env) == baseline
        assert env.server.stats().relay_total == pairs + 1

    run(loop, mode, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_out_of_descriptors_for_pipes_the_relay_goes_on_by_copy(loop: str) -> None:
    """At EMFILE no pipe can be made: reads are copied instead, and pipes are used
    again once descriptors are free."""

    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("emfile")
        check_mode(env, "splice")
        pipes = env.server._pairing.pipes
        assert pipes is not None and pipes.free == 0
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest = os.dup(0)
        os.close(lowest)
        total = 4 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest, hard))
        try:
            with pytest.raises(OSError):
                os.pipe()
            sent_d, sent_a, got_a, got_d = await asyncio.gather(
                pump(dialer, total, 5),
                pump(accepter, total, 6),
                drain(accepter, total),
                drain(dialer, total),
            )
            assert pipes.free == 0
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert (sent_d, sent_a) == (got_a, got_d)
        assert await pump(dialer, total, 7) == await drain(accepter, total)
        assert pipes.free > 0  # those reads went through pipes

    run(loop, "splice", scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_small_reads_are_copied_bulk_is_spliced(loop: str) -> None:
    async def scenario(env: Env) -> None:
        dialer, accepter = await env.relayed_pair("small")
        pipes = env.server._pairing.pipes
        assert pipes is not None
        for _ in range(20):  # ping-pong: no pipe is ever made
            dialer.send(b"ping")
            assert await accepter.read_exactly(4) == b"ping"
            accepter.send(b"pong")
            assert await dialer.read_exactly(4) == b"pong"
        assert pipes.free == 0
        total = 4 << 20
        sent, got = await asyncio.gather(pump(dialer, total, 8), drain(accepter, total))
        assert sent == got
        assert pipes.free > 0  # bulk went through pipes

    run(loop, "splice", scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_behind_a_proxy_protocol_balancer(loop: str) -> None:
    """docs/PROTOCOL.md section 14: the PROXY header is read before the HTTP head; after
    the ``101`` every byte is the peers' (the command's tail first), spliced like any pair."""
    factory = pytest.importorskip("uvloop").new_event_loop if loop == "uvloop" else None

    async def main() -> None:
        events: list[ev.Event] = []
        server = RdvServer(on_event=events.append, splice=True)
        front = await start_native(server, "127.0.0.1", 0, proxy_protocol=["127.0.0.0/8"])
        env = Env("native", server, front.port, "", events)
        try:
            balancer = Addr.parse("192.0.2.1:443")
            accepter = await env.raw(
                build_proxy_v2(Addr.parse("198.51.100.9:51812"), balancer)
                + rdv_request("ACCEPT", "/lb")
            )
            await env.wait_lobby(1)
            dialer = await env.raw(
                build_proxy_v1(Addr.parse("203.0.113.7:40122"), balancer)
                + rdv_request("DIAL", "/lb")
            )
            await dialer.read_head()
            await accepter.read_head()
            dialer.send(b"CONTINUE\ntail")
            assert await accepter.read_exactly(13) == b"CONTINUE\ntail"
            check_mode(env, "splice")
            total = 4 << 20
            sent, got = await asyncio.gather(pump(accepter, total, 9), drain(dialer, total))
            assert sent == got
        finally:
            await server.close()
            await front.close()

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def test_the_environment_switch_turns_splice_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SWITCH, "0")

    async def scenario() -> None:
        for server, spliced in ((RdvServer(), False), (RdvServer(splice=True), True)):
            front = await start_native(server)
            env = Env("native", server, front.port, "")
            try:
                await env.relayed_pair("env")
                check_mode(env, "splice" if spliced else "copy")
            finally:
                await server.close()
                await front.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_pairs_use_the_copy_relay(loop: str, tmp_path: Path) -> None:
    from tests.test_server_tls import _tls_client, make_cert

    cert, key = make_cert(tmp_path)
    factory = pytest.importorskip("uvloop").new_event_loop if loop == "uvloop" else None

    async def main() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = RdvServer(splice=True)
        front = await start_native(server, ssl=context)
        env = Env("native", server, front.port, "")
        try:
            accepter = await _tls_client(front.port, cert, rdv_request("ACCEPT", "/t"))
            await env.wait_lobby(1)
            dialer = await _tls_client(front.port, cert, rdv_request("DIAL", "/t"))
            await dialer.read_head()
            await accepter.read_head()
            dialer.send(b"CONTINUE\nsecret")
            assert await accepter.read_exactly(15) == b"CONTINUE\nsecret"
            check_mode(env, "copy")
        finally:
            await server.close()
            await front.close()

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())
