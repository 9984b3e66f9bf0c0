"""docs/PROTOCOL.md section 8: the continue step and the relay, through both fronts.

Every test runs on the zero-copy relay (splice, Linux) and on the copy relay.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from rdv_core import events as ev
from rdv_core.server._splice import AVAILABLE, ENV_SWITCH

from tests.server_support import EOF, Env, RawClient, drain


@pytest.fixture(autouse=True, params=["splice", "copy"])
def relay_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay the server (built after this fixture) uses: the environment switch."""
    if request.param == "splice" and not AVAILABLE:
        pytest.skip("splice(2) is Linux-only")
    monkeypatch.setenv(ENV_SWITCH, "1" if request.param == "splice" else "0")


def ended(env: Env) -> list[ev.RelayEnded]:
    return [e for e in env.events if isinstance(e, ev.RelayEnded)]


async def test_continue_then_relay_both_ways(env: Env) -> None:
    dialer, accepter, _, _ = await env.pair("cont")
    dialer.send(b"CONTINUE\nping from dialer")
    assert await accepter.read_exactly(25) == b"CONTINUE\nping from dialer"
    accepter.send(b"pong from accepter")
    assert await dialer.read_exactly(18) == b"pong from accepter"
    # A half-close is passed on (section 8): the other direction goes on to its own EOF.
    accepter.half_close()
    assert await dialer.read_for(1.0) == EOF.encode()
    dialer.send(b"late data")
    assert await accepter.read_exactly(9) == b"late data"
    assert not ended(env)
    dialer.half_close()
    assert await accepter.read_for(1.0) == EOF.encode()
    await env.wait_for(lambda: bool(ended(env)))
    end = ended(env)[0]
    assert (end.dialer_to_accepter, end.accepter_to_dialer) == (25, 18)
    assert end.relayed and end.reason == "accepter EOF"
    stats = env.server.stats()
    assert (stats.relay_total, stats.p2p_total, stats.bytes_relayed) == (1, 0, 43)
    assert [e.type for e in env.events if e.type.startswith("Relay")] == [
        "RelayStarted",
        "RelayEnded",
    ]


async def test_bytes_after_continue_in_the_same_segment_are_kept(env: Env) -> None:
    dialer, accepter, _, _ = await env.pair("seg")
    dialer.send(b"CONTINUE extra-arg\nDATA")
    assert await accepter.read_for(0.3) == b"CONTINUE\nDATA"


async def test_continue_split_across_segments(env: Env) -> None:
    dialer, accepter, _, _ = await env.pair("split")
    for byte in b"CONTINUE\n":
        dialer.send(bytes([byte]))
        await dialer.writer.drain()
        await asyncio.sleep(0.002)
    dialer.send(b"x")
    assert await accepter.read_exactly(10) == b"CONTINUE\nx"


async def test_other_records_p2p_and_closes_both(env: Env) -> None:
    dialer, accepter, _, _ = await env.pair("p2p")
    dialer.send(b"OTHER [fd00::2]:41851\n")
    assert await dialer.read_for(1.0) == EOF.encode()
    assert await accepter.read_for(1.0) == EOF.encode()
    await env.wait_for(lambda: bool(ended(env)))
    p2p = [e for e in env.events if isinstance(e, ev.P2PReported)]
    assert [e.addr for e in p2p] == ["[fd00::2]:41851"]
    assert ended(env)[0].relayed is False
    stats = env.server.stats()
    assert (stats.p2p_total, stats.relay_total, stats.pairs) == (1, 0, [])


@pytest.mark.parametrize(
    "command",
    [b"HELLO world\n", b"OTHER nonsense\n", b"x" * 5000],
    ids=["garbage", "bad-other", "too-long"],
)
async def test_garbage_command_closes_both(env: Env, command: bytes) -> None:
    dialer, accepter, _, _ = await env.pair("garbage")
    dialer.send(command)
    assert await dialer.read_for(1.0) == EOF.encode()
    assert await accepter.read_for(1.0) == EOF.encode()
    await env.wait_for(lambda: bool(ended(env)))
    assert ended(env)[0].reason.startswith("protocol error")
    assert env.server.stats().p2p_total == 0


async def test_dialer_eof_before_command_closes_both(env: Env) -> None:
    dialer, accepter, _, _ = await env.pair("eof")
    dialer.send(b"CONT")
    dialer.half_close()
    assert await accepter.read_for(1.0) == EOF.encode()
    assert await dialer.read_for(1.0) == EOF.encode()


async def test_accepter_sends_early_it_is_delivered_after_continue(env: Env) -> None:
    dialer, accepter, _, _ = await env.pair("early")
    accepter.send(b"hi early")
    await asyncio.sleep(0.05)
    dialer.send(b"CONTINUE\n")
    assert await dialer.read_exactly(8) == b"hi early"
    assert await accepter.read_exactly(9) == b"CONTINUE\n"


async def test_idle_timeout_without_command(env: Env) -> None:
    env.server.idle_timeout = 0.3
    loop = asyncio.get_running_loop()
    dialer, accepter, _, _ = await env.pair("idle1")
    started = loop.time()
    assert await dialer.read_for(2.0) == EOF.encode()
    assert 0.25 < loop.time() - started < 1.5
    assert await accepter.read_for(1.0) == EOF.encode()
    assert ended(env)[0].reason == "idle timeout"


async def test_idle_timeout_after_continue_and_activity(env: Env) -> None:
    env.server.idle_timeout = 0.3
    loop = asyncio.get_running_loop()
    dialer, accepter, _, _ = await env.pair("idle2")
    dialer.send(b"CONTINUE\n")
    assert await accepter.read_exactly(9) == b"CONTINUE\n"
    # Activity keeps the pair open past the timeout ...
    for _ in range(4):
        await asyncio.sleep(0.15)
        accepter.send(b"k")
        assert await dialer.read_exactly(1) == b"k"
    started = loop.time()
    # ... then silence closes it.
    assert await accepter.read_for(2.0) == EOF.encode()
    assert 0.25 < loop.time() - started < 1.5
    assert await dialer.read_for(1.0) == EOF.encode()
    end = ended(env)[0]
    assert (end.reason, end.accepter_to_dialer) == ("idle timeout", 4)


async def _pump(client: RawClient, total: int, chunk: int = 256 * 1024) -> str:
    """Send ``total`` pseudo-random bytes (then half-close); return their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(chunk)
    sent = 0
    while sent < total:
        # Vary the data so that a reordering or a stale buffer would show.
        piece = block[sent % 997 :] + block[: sent % 997]
        piece = piece[: min(chunk, total - sent)]
        digest.update(piece)
        client.send(piece)
        await client.writer.drain()
        sent += len(piece)
    return digest.hexdigest()


@pytest.mark.slow
async def test_relays_64_mib_both_ways_intact(env: Env) -> None:
    total = 64 * 1024 * 1024
    dialer, accepter = await env.relayed_pair("bulk")
    async with asyncio.timeout(60):
        sent_d, sent_a, got_a, got_d = await asyncio.gather(
            _pump(dialer, total),
            _pump(accepter, total),
            drain(accepter, total),
            drain(dialer, total),
        )
    assert sent_d == got_a
    assert sent_a == got_d
    stats = env.server.stats()
    assert stats.pairs[0].bytes_dialer_to_accepter == total
    assert stats.pairs[0].bytes_accepter_to_dialer == total
    await dialer.close()
    assert await accepter.read_for(2.0) == EOF.encode()
    await accepter.close()
    await env.wait_for(lambda: bool(ended(env)))
    assert env.server.stats().bytes_relayed == 2 * total


async def test_slow_reader_flow_control_bounds_server_buffers(env: Env) -> None:
    """A reader that stops reading must stall the writer, not grow server memory."""
    dialer, accepter = await env.relayed_pair("slow")
    payload = os.urandom(1 << 20)
    sent = 0
    # The accepter reads nothing: after the kernel buffers fill, writes must block.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.0):
            while True:
                dialer.send(payload)
                await dialer.writer.drain()
                sent += len(payload)
    relayer = next(iter(env.server._pairs.values()))
    # The server holds at most one read's worth of bytes for the stalled direction.
    assert relayer.accepter.transport.get_write_buffer_size() <= 256 * 1024
    assert sent < 64 * 1024 * 1024
    # Reading again resumes the flow.
    first = await accepter.read_exactly(sent // 2)
    assert first[: len(payload)] == payload
