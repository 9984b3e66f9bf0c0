"""The native front's protections, tried on the aiohttp mount the same way (all hold).

docs/PROTOCOL.md sections 5, 8, 13 and 15.1: the app's shutdown resets relays in flight, the
idle timeout resets a pair, one address cannot hold the pairs, forwarding headers count only
from trusted proxies (for the observed address, the lobby caps and the dial-back), and a
client that vanishes mid-request leaves no lobby ghost. What the mount leaves to aiohttp
(the head deadline, head slots per address, running out of fds) is in the README's aiohttp
section and PROTOCOL section 3. Real aiohttp apps on loopback; sources 127.0.0.x/127.0.1.x.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

import pytest
from aiohttp import web

from rdv_core.server import LobbyLimits, ProbeService
from rdv_core.server._core import RdvServer
from rdv_core.server._observed import make_observed_addr

from tests.server_support import AUTH, Env, RawClient, parse_head, rdv_request
from tests.test_server_aiohttp_hostile import SHUTTING_DOWN, app_with, ending


async def request_from(
    env: Env, method: str, token: str, source: str, headers: tuple[tuple[str, str], ...] = ()
) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port, local_addr=(source, 0))
    client = RawClient(reader, writer)
    client.send(rdv_request(method, env.path(token), headers=headers))
    return client


def reset(client: RawClient) -> None:
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


@pytest.mark.parametrize("splice", [False, True], ids=["copy", "splice"])
async def test_app_shutdown_resets_relays_in_flight_and_answers_the_lobby(splice: bool) -> None:
    async with app_with(RdvServer(splice=splice)) as (env, runner):
        busy_d, busy_a = await env.relayed_pair("busy")
        busy_d.send(b"x" * (8 << 20))  # its reader stalled: the server holds bytes for it
        await env.wait_for(lambda: env.server.stats().bytes_relayed > 1 << 20)
        idle_d, idle_a = await env.relayed_pair("idle")
        waiting = await env.request("ACCEPT", "waiting")
        await env.wait_lobby(1)
        await runner.cleanup()
        assert (await waiting.read_until_eof()).endswith(SHUTTING_DOWN)
        endings = [(await ending(c))[1] for c in (busy_a, busy_d, idle_a, idle_d)]
        assert endings == ["reset"] * 4
        assert env.server.open_conns == 0


@pytest.mark.parametrize("splice", [False, True], ids=["copy", "splice"])
async def test_the_idle_timeout_resets_a_pair(splice: bool) -> None:
    async with app_with(RdvServer(splice=splice, idle_timeout=0.3)) as (env, _):
        dialer, accepter = await env.relayed_pair("quiet")
        dialer.send(b"y" * (1 << 20))
        assert len(await accepter.read_exactly(1 << 20)) == 1 << 20
        assert [(await ending(c))[1] for c in (accepter, dialer)] == ["reset", "reset"]


async def test_one_address_cannot_hold_the_pairs() -> None:
    limits = LobbyLimits(pairs_per_address=1, pairs_per_network=None)
    async with app_with(RdvServer(lobby_limits=limits)) as (env, _):
        accepter = await request_from(env, "ACCEPT", "mine", "127.0.0.1")
        await env.wait_lobby(1)
        dialer = await request_from(env, "DIAL", "mine", "127.0.0.1")
        assert parse_head(await dialer.read_head())[0] == 101
        refused = await request_from(env, "ACCEPT", "more", "127.0.0.1")
        assert (await refused.read_until_eof()).endswith(
            b"too many open pairs from your address, try again later"
        )
        other = await request_from(env, "ACCEPT", "theirs", "127.0.1.1")
        await env.wait_lobby(1)  # another network waits as usual
        for client in (accepter, dialer, other):
            await client.close()


async def test_forwarding_headers_count_only_from_trusted_proxies() -> None:
    """The observed address and the lobby caps' key: the TCP peer, unless it is trusted."""
    forged = (("X-Forwarded-For", "203.0.113.9:4444"),)
    trusted = make_observed_addr(["127.0.0.5/32"])
    limits = LobbyLimits(per_address=1)
    async with app_with(RdvServer(observed_addr=trusted, lobby_limits=limits)) as (env, _):
        accepter = await request_from(env, "ACCEPT", "t", "127.0.0.6", forged)
        await env.wait_lobby(1)
        dialer = await request_from(env, "DIAL", "t", "127.0.0.5", forged)
        head_d, head_a = await dialer.read_head(), await accepter.read_head()
        assert b"Rdv-Observed-Addr: 203.0.113.9:4444\r\n" in head_d, head_d
        assert b"Rdv-Observed-Addr: 127.0.0.6:" in head_a, head_a
        # Behind the trusted proxy each client has its own cap; the proxy has none.
        first = await request_from(env, "ACCEPT", "a", "127.0.0.5", forged)
        other = (("X-Forwarded-For", "203.0.113.10:4444"),)
        second = await request_from(env, "ACCEPT", "b", "127.0.0.5", other)
        await env.wait_lobby(2)
        again = await request_from(env, "ACCEPT", "c", "127.0.0.5", forged)
        assert b"too many requests waiting from your address" in await again.read_until_eof()
        for client in (accepter, dialer, first, second):
            await client.close()


@web.middleware
async def slow_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """An auth check that takes a while (a database, a token service)."""
    await asyncio.sleep(0.2)
    if request.headers.get(AUTH[0]) != AUTH[1]:
        return web.Response(status=401, text="authorization required\n")
    response: web.StreamResponse = await handler(request)
    return response


async def test_clients_gone_mid_request_leave_no_lobby_ghost() -> None:
    """Reset right after the request, or while the app's middleware still decides."""
    events: list[Any] = []
    async with app_with(RdvServer(on_event=events.append), [slow_auth]) as (env, runner):
        env.extra_headers = (AUTH,)
        clients = [await env.request("ACCEPT", f"ghost-{n}") for n in range(6)]
        for n, client in enumerate(clients):
            if n % 2:
                await asyncio.sleep(0.05)
            if n % 3:
                reset(client)
            else:
                client.half_close()
        await asyncio.sleep(0.4)
        assert env.server.stats().lobby == 0 and env.server.open_conns == 0
        assert runner.server is not None
        aio_server = runner.server
        await env.wait_for(lambda: not aio_server.connections)
        assert not [e for e in events if e.type == "PeerJoined"], events


async def test_the_dial_back_goes_only_to_the_asker() -> None:
    """Forged forwarding headers from an untrusted client name a victim: never dialled."""
    got: list[bytes] = []

    async def victim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.read(200))
        writer.close()

    listener = await asyncio.start_server(victim, "127.0.0.2", 0)
    victim_port = listener.sockets[0].getsockname()[1]
    server = RdvServer()
    probes = ProbeService(dial_back=True, observe=server.observe)

    def with_probes(app: web.Application, server: RdvServer) -> None:
        from rdv_core.server._aiohttp import mount

        mount(app, server, "/rdv", probes=probes)

    try:
        async with app_with(server, route=with_probes) as (env, _):
            forged = f"X-Forwarded-For: 127.0.0.2:{victim_port}\r\nX-Real-IP: 127.0.0.2\r\n"
            client = await env.raw(
                f"GET /.rdv/dial-back?nonce=0123456789abcdef HTTP/1.1\r\nHost: x\r\n{forged}\r\n"
                .encode()
            )  # fmt: skip
            status, _, body = await client.read_response()
    finally:
        listener.close()
    assert status == 200, body
    assert got == [], got
    assert str(json.loads(body)["target"]).startswith("127.0.0.1:"), body


async def test_keepalive_timeout_is_the_head_deadline() -> None:
    """What the README tells an app facing the Internet: aiohttp's ``keepalive_timeout``
    runs from the conn's start, so a head trickled a byte at a time is cut there (the
    native front's 30 s head deadline; aiohttp's default is 75 s)."""
    async with app_with(RdvServer(), keepalive_timeout=0.5) as (env, _):
        client = await env.connect()
        start = asyncio.get_running_loop().time()
        data = rdv_request("ACCEPT", "/rdv/trickle")
        for byte in range(len(data) - 1):
            client.send(data[byte : byte + 1])
            if await client.read_for(0.05):
                break
        took = asyncio.get_running_loop().time() - start
        assert 0.4 < took < 1.5, took
        assert env.server.stats().lobby == 0
