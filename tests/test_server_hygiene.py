"""Nothing leaks and nothing crashes: fds, tasks and memory after pairs end, clients
vanish and the server shuts down; garbage never hurts the server."""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from typing import Any

from rdv_core.wire._addrs import clear_caches

from tests.server_support import (
    EOF,
    Env,
    RawClient,
    open_fds,
    rdv_request,
    running_server,
)


async def _settle(env: Env) -> None:
    await env.wait_for(lambda: env.server.open_conns == 0)
    if env.app_runner is not None:
        server = env.app_runner.server
        assert server is not None
        await env.wait_for(lambda: not server.connections)
    for _ in range(3):
        await asyncio.sleep(0.01)


async def _workload(env: Env, rounds: int) -> None:
    """Pairs that relay, go p2p, get garbage; lobby clients that vanish or misbehave."""
    for i in range(rounds):
        dialer, accepter = await env.relayed_pair(f"relay-{i}")
        dialer.send(b"x" * 1000)
        assert await accepter.read_exactly(1000) == b"x" * 1000
        await dialer.close()
        assert await accepter.read_for(2.0) == EOF.encode()
        await accepter.close()

        dialer, accepter, _, _ = await env.pair(f"p2p-{i}")
        dialer.send(b"OTHER 127.0.0.1:9\n")
        assert await accepter.read_for(2.0) == EOF.encode()
        await dialer.close()
        await accepter.close()

        # A relaying peer that vanishes with a reset.
        dialer, accepter = await env.relayed_pair(f"reset-{i}")
        dialer.writer.transport.abort()
        assert await accepter.read_for(2.0) == EOF.encode()
        await accepter.close()

        vanishing = await env.request("ACCEPT", f"vanish-{i}")
        await env.wait_for(lambda i=i: f"vanish-{i}" in env.server._lobby)
        await vanishing.close()

        chatty = await env.request("DIAL", f"chatty-{i}")
        await env.wait_for(lambda i=i: f"chatty-{i}" in env.server._lobby)
        chatty.send(b"!")
        await chatty.read_until_eof()
        await chatty.close()

        rejected = await env.raw(env.with_auth(env.raw_path(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")))
        await rejected.read_response()
        await rejected.close()


async def test_fds_and_tasks_return_to_baseline(env: Env) -> None:
    await _workload(env, 2)  # warm up (lazy imports, caches)
    await _settle(env)
    fds, tasks = open_fds(), len(asyncio.all_tasks())
    await _workload(env, 10)
    await _settle(env)
    assert open_fds() == fds
    assert len(asyncio.all_tasks()) == tasks
    stats = env.server.stats()
    assert (stats.lobby, stats.pairs) == (0, [])


async def test_memory_returns_to_baseline(env: Env) -> None:
    env.server.on_event = None  # the test's event list would grow, by design
    await _workload(env, 3)
    await _settle(env)
    gc.collect()
    tracemalloc.start()
    try:
        await _workload(env, 3)
        await _settle(env)
        clear_caches()  # bounded memo caches of addresses (rdv_core/wire/_addrs.py)
        gc.collect()
        before = tracemalloc.take_snapshot()
        await _workload(env, 15)
        await _settle(env)
        clear_caches()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # 90 more conns through the server; what stays must not grow with them.
    # yarl (aiohttp's URLs) memoises URL pieces in bounded LRU caches that fill with the
    # workload's fresh tokens: 20 KiB of this growth on the aiohttp front, none of it ours.
    bounded = [tracemalloc.Filter(False, "*/yarl/*")]
    diff = after.filter_traces(bounded).compare_to(before.filter_traces(bounded), "lineno")
    growth = sum(stat.size_diff for stat in diff)
    top = "\n".join(str(stat) for stat in diff[:8])
    assert growth < 32 * 1024, f"grew by {growth} bytes:\n{top}"


async def test_shutdown_releases_everything() -> None:
    fds = open_fds()
    tasks = len(asyncio.all_tasks())
    clients: list[RawClient] = []
    for kind in ("native", "aiohttp"):
        async with running_server(kind) as env:
            for i in range(5):
                clients.append(await env.request("ACCEPT", f"wait-{i}"))
            for i in range(5):
                dialer, accepter = await env.relayed_pair(f"busy-{i}")
                dialer.send(b"data")
                clients += [dialer, accepter]
            idle = await env.connect()  # connected, never sends a request
            clients.append(idle)
            await env.wait_lobby(5)
        # Leaving the context closed server and front: every client sees EOF.
        for client in clients:
            assert (await client.read_for(2.0)).endswith(EOF.encode())
            await client.close()
        clients.clear()
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert open_fds() == fds
    assert len(asyncio.all_tasks()) == tasks


def _mutations(rng: random.Random, valid: bytes) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 3000))
    if kind == 1:
        cut = rng.randrange(len(valid))
        return valid[:cut]
    if kind == 2:
        data = bytearray(valid)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 3:
        return valid + rng.randbytes(rng.randrange(1, 200))
    if kind == 4:
        return valid.replace(b"\r\n", b"\n")
    if kind == 5:
        return valid[:20] + b"X-Big: " + b"a" * rng.randrange(5000, 40000) + b"\r\n\r\n"
    return rng.choice(
        [b"\r\n\r\n", b"DIAL", b"\x16\x03\x01\x02\x00", b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 64]
    )


async def test_garbage_never_crashes_the_server(env: Env) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    rng = random.Random(20261125)
    clients: list[RawClient] = []
    try:
        for i in range(150):
            valid = env.with_auth(
                rdv_request(rng.choice(["DIAL", "ACCEPT"]), env.path(f"f{i % 7}"))
            )
            data = _mutations(rng, valid)
            client = await env.connect()
            # Random segmentation.
            pos = 0
            while pos < len(data):
                step = rng.randrange(1, 400)
                client.send(data[pos : pos + step])
                pos += step
                if rng.random() < 0.3:
                    await asyncio.sleep(0)
            if rng.random() < 0.3:
                client.writer.transport.abort()
            elif rng.random() < 0.3:
                client.half_close()
                clients.append(client)
            else:
                clients.append(client)
        await asyncio.sleep(0.2)
        for client in clients:
            await client.close()
        await _settle(env)
        # Still serving.
        dialer, accepter = await env.relayed_pair("after-fuzz")
        dialer.send(b"alive")
        assert await accepter.read_exactly(5) == b"alive"
        await dialer.close()
        await accepter.close()
        await _settle(env)
    finally:
        loop.set_exception_handler(None)
    assert errors == []
