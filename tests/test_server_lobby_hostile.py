"""The lobby under hostile or careless clients: conns reset without a FIN, clients that
give up, squatters that fill it (caps per source address, per network and in total).

docs/PROTOCOL.md section 5; the caps are an rdv extension (section 13).
"""

from __future__ import annotations

import asyncio
import socket
import struct

from rdv_core import events as ev
from rdv_core.server import LobbyLimits

from tests.server_support import Env, RawClient, rdv_request
from tests.test_server_lobby import upgrade_error


def reset(client: RawClient) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0): the server sees no EOF."""
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


async def test_reset_lobby_conn_frees_its_slot(env: Env) -> None:
    ghost = await env.request("ACCEPT", "ghost")
    await env.wait_lobby(1)
    reset(ghost)
    await env.wait_for(lambda: env.server.open_conns == 0)
    assert "ghost" not in env.server._lobby
    # The next request with the token waits for a real peer instead of matching the ghost.
    accepter = await env.request("ACCEPT", "ghost")
    await env.wait_lobby(1)
    dialer = await env.request("DIAL", "ghost")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await accepter.read_head()).startswith(b"HTTP/1.1 101 ")
    left = [e for e in env.events if isinstance(e, ev.LobbyLeft)]
    assert [(e.token, e.reason) for e in left] == [("ghost", "disconnected")]


async def connect_from(env: Env, source: str, method: str, token: str) -> RawClient:
    """A request from loopback address ``source`` (the whole 127/8 is loopback on Linux)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port, local_addr=(source, 0))
    client = RawClient(reader, writer)
    client.send(rdv_request(method, env.path(token), "", env.extra_headers))
    return client


TOO_MANY_ADDRESS = upgrade_error(
    429, "Too Many Requests", "too many requests waiting from your address, try again later"
)
TOO_MANY_NETWORK = upgrade_error(
    429, "Too Many Requests", "too many requests waiting from your network, try again later"
)
FULL = upgrade_error(503, "Service Unavailable", "rdv lobby is full, try again later")


async def test_per_address_cap_refuses_only_waiting_requests(env: Env) -> None:
    env.server.lobby_limits = LobbyLimits(total=None, per_address=2, per_network=None)
    waiting = [await connect_from(env, "127.0.0.1", "ACCEPT", f"a{i}") for i in range(2)]
    await env.wait_lobby(2)
    third = await connect_from(env, "127.0.0.1", "ACCEPT", "a2")
    assert await third.read_until_eof() == TOO_MANY_ADDRESS
    # Another address has its own count.
    other = await connect_from(env, "127.0.0.2", "ACCEPT", "b0")
    await env.wait_lobby(3)
    # At the cap, a request that matches never waits, and one that replaces its own
    # older request takes that request's place.
    dialer = await connect_from(env, "127.0.0.1", "DIAL", "a0")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await waiting[0].read_head()).startswith(b"HTTP/1.1 101 ")
    again = await connect_from(env, "127.0.0.1", "ACCEPT", "a1")
    assert (await waiting[1].read_until_eof()).startswith(b"HTTP/1.1 409 ")
    assert await again.read_for(0.1) + await other.read_for(0) == b""
    stats = env.server.stats()
    assert stats.lobby == 2 and stats.lobby_refused_by_limit == {"address": 1}
    assert stats.rejects_by_status[429] == 1
    rejected = [e for e in env.events if isinstance(e, ev.Rejected)]
    assert [(e.status, e.remote.split(":")[0]) for e in rejected] == [(429, "127.0.0.1")]


async def test_per_network_cap_counts_a_slash_24(env: Env) -> None:
    env.server.lobby_limits = LobbyLimits(total=None, per_address=None, per_network=3)
    # (Clients are kept: one garbage collected would close its conn.)
    waiting = [await connect_from(env, f"127.0.0.{i + 1}", "ACCEPT", f"n{i}") for i in range(3)]
    await env.wait_lobby(3)
    refused = await connect_from(env, "127.0.0.9", "DIAL", "n9")
    assert await refused.read_until_eof() == TOO_MANY_NETWORK
    waiting.append(await connect_from(env, "127.0.1.1", "DIAL", "other-net"))
    await env.wait_lobby(4)
    assert env.server.stats().lobby_refused_by_limit == {"network": 1}


async def test_total_cap_answers_503_and_frees_with_the_lobby(env: Env) -> None:
    env.server.lobby_limits = LobbyLimits(total=2, per_address=None, per_network=None)
    first = await connect_from(env, "127.0.0.1", "ACCEPT", "t0")
    second = await connect_from(env, "127.0.0.2", "ACCEPT", "t1")
    await env.wait_lobby(2)
    refused = await connect_from(env, "127.0.0.3", "ACCEPT", "t2")
    assert await refused.read_until_eof() == FULL
    await first.close()
    await env.wait_lobby(1)
    third = await connect_from(env, "127.0.0.3", "ACCEPT", "t2")
    await env.wait_lobby(2)
    assert await second.read_for(0) + await third.read_for(0) == b""
    stats = env.server.stats()
    assert (stats.lobby_refused_by_limit, stats.lobby_abandoned_total) == ({"total": 1}, 1)


async def test_clients_that_give_up_are_not_counted_as_rejects(env: Env) -> None:
    closing = await env.request("ACCEPT", "bye")
    vanishing = await env.request("ACCEPT", "poof")
    await env.wait_lobby(2)
    await closing.close()
    reset(vanishing)
    await env.wait_lobby(0)
    chatty = await env.request("ACCEPT", "chat")
    await env.wait_lobby(1)
    chatty.send(b"x")
    await chatty.read_until_eof()
    stats = env.server.stats()
    assert (stats.lobby_abandoned_total, stats.rejects_by_status) == (2, {400: 1})
    if env.kind == "native":
        client = await env.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, body = await client.read_response()
        assert b"\nrdv_lobby_abandoned_total 2\n" in body
        assert b'\nrdv_rejects_total{status="400"} 1\n' in body


EVICTED = upgrade_error(
    503,
    "Service Unavailable",
    "rdv lobby is full and your network holds the most waiting requests, try again later",
)


async def test_a_full_lobby_evicts_the_oldest_request_of_the_network_holding_most(
    env: Env,
) -> None:
    """Squatters from many networks fill the total; a newcomer from a network holding
    fewer slots takes the place of the oldest request of the network holding the most,
    and a newcomer from that network itself is the one refused."""
    env.server.lobby_limits = LobbyLimits(total=6, per_address=None, per_network=None)
    # 127.0.1.0/24 holds 3, 127.0.2.0/24 holds 2, 127.0.3.0/24 holds 1: full.
    squat = {
        (net, i): await connect_from(env, f"127.0.{net}.{i + 1}", "ACCEPT", f"s{net}-{i}")
        for net, count in ((1, 3), (2, 2), (3, 1))
        for i in range(count)
    }
    await env.wait_lobby(6)
    # From the network holding the most: refused, nobody evicted.
    refused = await connect_from(env, "127.0.1.9", "ACCEPT", "more-of-1")
    assert await refused.read_until_eof() == FULL
    # From another network: the oldest of 127.0.1.0/24 makes room, the newcomer waits.
    accepter = await connect_from(env, "127.0.9.1", "ACCEPT", "legit")
    assert await squat[1, 0].read_until_eof() == EVICTED
    await env.wait_lobby(6)
    assert "legit" in env.server._lobby and "s1-0" not in env.server._lobby
    # Now 1 and 2 hold two each; 2 has held two longer: its oldest request goes.
    second = await connect_from(env, "127.0.8.1", "ACCEPT", "legit-2")
    assert await squat[2, 0].read_until_eof() == EVICTED
    await env.wait_lobby(6)
    # The legitimate pair meets.
    dialer = await connect_from(env, "127.0.7.1", "DIAL", "legit")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await accepter.read_head()).startswith(b"HTTP/1.1 101 ")
    assert await second.read_for(0) == b""
    stats = env.server.stats()
    assert stats.lobby_refused_by_limit == {"total": 1, "evicted": 2}
    assert stats.rejects_by_status == {503: 3}
    left = [(e.token, e.reason) for e in env.events if isinstance(e, ev.LobbyLeft)]
    assert left == [("s1-0", "evicted"), ("s2-0", "evicted")]


async def test_fair_share_still_refuses_a_source_over_its_own_cap(env: Env) -> None:
    """A full lobby evicts for a newcomer only within the caps: one over its address cap
    gets its 429, and nobody is evicted for it."""
    env.server.lobby_limits = LobbyLimits(total=3, per_address=1, per_network=None)
    squat = [await connect_from(env, f"127.0.{n}.1", "ACCEPT", f"q{n}") for n in (1, 2, 3)]
    await env.wait_lobby(3)
    over = await connect_from(env, "127.0.1.1", "ACCEPT", "q1-again")
    assert await over.read_until_eof() == TOO_MANY_ADDRESS
    assert all([await client.read_for(0) == b"" for client in squat])
    assert env.server.stats().lobby_refused_by_limit == {"address": 1}
