"""One client must not hold the server's pairs (and so its fds) from the others.

The lobby caps count waiting requests only; a client that dials and accepts its own tokens
left the lobby at once and held two fds per pair, until every descriptor was taken and
every other client got ``503 rdv server at capacity``. The pair caps (docs/PROTOCOL.md
section 13) refuse a source that holds its share of open pairs. Real sockets: the attacker
connects from 127.0.0.1, the others from 127.0.1.x (another /24 of the loopback).
"""

from __future__ import annotations

import asyncio
import re

from rdv_core.server import LobbyLimits

from tests.server_support import (
    RawClient,
    a_pair_meets,
    parse_head,
    rdv_request,
    rdv_serve_with_fds,
    running_server,
)


async def _request(port: int, method: str, token: str, source: str) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    client = RawClient(reader, writer)
    client.send(rdv_request(method, f"/{token}"))
    return client


async def _status(client: RawClient, within: float = 20.0) -> int:
    try:
        return parse_head(await client.read_head(within))[0]
    except (asyncio.IncompleteReadError, ConnectionError):
        return 0  # reset: out of descriptors without even the reserve's answer


async def _self_pair(port: int, token: str) -> tuple[int, list[RawClient]]:
    """The attacker's move: ACCEPT and DIAL the same token from one address."""
    accepter = await _request(port, "ACCEPT", token, "127.0.0.1")
    await asyncio.sleep(0.005)  # let it wait first: the DIAL then matches it
    dialer = await _request(port, "DIAL", token, "127.0.0.1")
    return await _status(dialer), [accepter, dialer]


async def _metric(port: int, name: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = RawClient(reader, writer)
    client.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    body = (await client.read_response(20.0))[2].decode()
    await client.close()
    found = re.search(rf"^{name} (\d+)$", body, re.MULTILINE)
    assert found is not None, body
    return int(found.group(1))


async def test_a_self_pairing_client_cannot_take_every_fd() -> None:
    """``rdv serve`` with its default caps and 512 fds; one address opens 300 self-pairs
    (600 conns). Before: about 248 pairs matched, then the fds ran out and another
    client's pair got ``503 rdv server at capacity``. Now the attacker gets 100 pairs and
    ``429`` (both requests of each of the other 200), the other client pairs and relays,
    and the attacker's pairs, once closed, no longer count."""
    held: list[RawClient] = []
    async with rdv_serve_with_fds(512) as served:
        port = served.port
        try:
            statuses: dict[int, int] = {}
            for n in range(300):
                status, conns = await _self_pair(port, f"squat-{n}")
                statuses[status] = statuses.get(status, 0) + 1
                held += conns
            assert statuses == {101: 100, 429: 200}, statuses
            refused = await _request(port, "DIAL", "squat-more", "127.0.0.1")
            head = await refused.read_until_eof(20.0)
            assert head.endswith(b"too many open pairs from your address, try again later"), head
            # Another client, another network: it meets its peer and bytes flow.
            await a_pair_meets(port, "legit", "127.0.1.1", "127.0.1.2")
            # The attacker lets go: its pairs end, and it may pair again.
            for client in held:
                await client.close()
            held.clear()
            async with asyncio.timeout(30):
                while await _metric(port, "rdv_pairs_open"):  # noqa: ASYNC110 (a real process)
                    await asyncio.sleep(0.05)
            status, conns = await _self_pair(port, "again")
            held += conns
            assert status == 101
            assert await _metric(port, 'rdv_lobby_refused_total{limit="pairs_address"}') == 401
        finally:
            for client in held:
                await client.close()
    err = served.stderr
    assert "pair cap reached (pairs_address, 127.0.0.1): refusing requests with 429" in err, err


async def test_a_waiter_whose_source_filled_its_pairs_gives_up_the_slot() -> None:
    """A request that waited while its source opened its share of pairs: the newcomer that
    would match it takes its slot instead (``429`` to the waiter), and meets its own peer."""
    limits = LobbyLimits(pairs_per_address=1, pairs_per_network=None)
    async with running_server("native", lobby_limits=limits) as env:
        waiter = await _request(env.port, "ACCEPT", "shared", "127.0.0.1")
        await env.wait_lobby(1)
        status, conns = await _self_pair(env.port, "mine")  # its address's one pair
        assert status == 101
        newcomer = await _request(env.port, "DIAL", "shared", "127.0.1.1")
        assert await _status(waiter) == 429
        await env.wait_lobby(1)  # the newcomer waits in the slot
        peer = await _request(env.port, "ACCEPT", "shared", "127.0.1.2")
        assert (await _status(newcomer), await _status(peer)) == (101, 101)
        for client in (waiter, newcomer, peer, *conns):
            await client.close()


async def test_pairs_between_two_sources_count_for_each() -> None:
    """A pair counts against both of its peers' sources (each holds one of its fds), and
    a network cap counts the whole /24."""
    limits = LobbyLimits(pairs_per_address=None, pairs_per_network=2)
    async with running_server("native", lobby_limits=limits) as env:
        conns: list[RawClient] = []
        for n, (a, d) in enumerate([("127.0.1.1", "127.0.2.1"), ("127.0.1.2", "127.0.3.1")]):
            accepter = await _request(env.port, "ACCEPT", f"t{n}", a)
            await env.wait_lobby(1)
            dialer = await _request(env.port, "DIAL", f"t{n}", d)
            assert (await _status(dialer), await _status(accepter)) == (101, 101)
            conns += [accepter, dialer]
        # 127.0.1.0/24 holds two pairs: refused; 127.0.2.0/24 holds one: it waits.
        refused = await _request(env.port, "ACCEPT", "t9", "127.0.1.9")
        assert (await refused.read_until_eof()).endswith(
            b"too many open pairs from your network, try again later"
        )
        waiting = await _request(env.port, "ACCEPT", "t8", "127.0.2.9")
        await env.wait_lobby(1)
        for client in (refused, waiting, *conns):
            await client.close()
