"""One address must not hold every fd with requests it never finishes (slowloris).

A conn holds a descriptor until its head is whole (30 s at most). One address that opened
1,100 conns and sent a byte on each took every fd of a 1,024-fd ``rdv serve``: another
network's ``ACCEPT`` met ``503 rdv server at capacity``. The head slots
(``rdv_core.server._head_slots``, docs/PROTOCOL.md section 13) answer a source's conn
beyond its share ``429`` at once. Real sockets: the attacker is 127.0.0.1, the others are
on 127.0.1.x (another /24 of the loopback).
"""

from __future__ import annotations

import asyncio

from rdv_core.server import LobbyLimits
from rdv_core.server._observed import TrustedProxies

from tests.server_support import (
    RawClient,
    a_pair_meets,
    parse_head,
    rdv_request,
    rdv_serve_with_fds,
    running_server,
)

#: A head that is never finished: an rdv request without its blank line.
UNFINISHED = rdv_request("ACCEPT", "/slow")[:-2]


async def _open(port: int, source: str, data: bytes) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    client = RawClient(reader, writer)
    client.send(data)
    return client


async def _answered(client: RawClient, within: float) -> bytes | None:
    """What the server said before it closed the conn, or None if it holds it open."""
    try:
        return await client.read_until_eof(within)
    except TimeoutError:
        return None
    except ConnectionError:
        return b"(reset)"


async def test_unfinished_heads_of_one_address_cannot_take_every_fd() -> None:
    """``rdv serve`` with its defaults and 512 fds; 127.0.0.1 opens 600 conns and leaves
    each head unfinished. Before: the fds ran out and another network's pair got ``503``
    (or a reset). Now 64 are held, the rest get ``429`` at once, another network pairs and
    relays, and once the attacker lets go its address is served again."""
    held: list[RawClient] = []
    async with rdv_serve_with_fds(512) as served:
        port = served.port
        try:
            for _ in range(600):
                held.append(await _open(port, "127.0.0.1", UNFINISHED))
            answers = await asyncio.gather(*(_answered(c, 3.0) for c in held))
            refused = [a for a in answers if a is not None]
            assert len(refused) == 600 - 64, {a for a in answers}
            # Each is told why once its first bytes are read (never a reset for them unread).
            assert all(
                a.endswith(b"too many unfinished requests from your address, try again later\n")
                for a in refused
            ), {a[:200] for a in refused}
            assert parse_head(refused[0])[0] == 429
            # Another network meets its peer and bytes flow.
            await a_pair_meets(port, "legit", "127.0.1.1", "127.0.1.2")
            # The attacker lets go: its address gets its slots back.
            for client in held:
                await client.close()
            held.clear()
            async with asyncio.timeout(20):
                while True:
                    probe = await _open(port, "127.0.0.1", b"GET /healthz HTTP/1.0\r\n\r\n")
                    answer = await _answered(probe, 10.0)
                    await probe.close()
                    if answer is not None and parse_head(answer)[0] == 200:
                        break
                    await asyncio.sleep(0.05)
        finally:
            for client in held:
                await client.close()
    err = served.stderr
    assert "unfinished requests: 64 per address, 256 per network" in err, err


async def test_a_network_shares_its_slots_and_a_finished_head_frees_its_own() -> None:
    """The /24 cap counts every address in it; a conn whose request is admitted (it waits
    in the lobby now, counted by the lobby caps) no longer holds a head slot."""
    limits = LobbyLimits(heads_per_address=3, heads_per_network=4)
    async with running_server("native", lobby_limits=limits) as env:
        a = [await _open(env.port, "127.0.2.1", UNFINISHED) for _ in range(4)]
        assert [await _answered(c, 0.5) for c in a[:3]] == [None, None, None]
        assert parse_head(await _answered(a[3], 5.0) or b"")[0] == 429
        b = await _open(env.port, "127.0.2.2", UNFINISHED)  # same /24: its fourth slot
        assert await _answered(b, 0.5) is None
        c = await _open(env.port, "127.0.2.3", UNFINISHED)
        assert parse_head(await _answered(c, 5.0) or b"")[0] == 429
        b.send(b"\r\n")  # its head is whole: it waits in the lobby, its slot is free
        await env.wait_lobby(1)
        d = await _open(env.port, "127.0.2.4", UNFINISHED)
        assert await _answered(d, 0.5) is None
        other = await _open(env.port, "127.0.3.1", UNFINISHED)  # another /24: its own share
        assert await _answered(other, 0.5) is None
        for client in (*a, b, c, d, other):
            await client.close()


async def test_a_trusted_proxy_is_not_counted() -> None:
    """Behind a balancer every client shares its address: its conns are not counted (the
    client it names comes with the request, too late for a head never sent)."""
    limits = LobbyLimits(heads_per_address=2, heads_per_network=2)
    trusted = TrustedProxies(["127.0.0.1/32"])
    async with running_server("native", lobby_limits=limits, observed_addr=trusted) as env:
        conns = [await _open(env.port, "127.0.0.1", UNFINISHED) for _ in range(5)]
        assert [await _answered(c, 0.3) for c in conns] == [None] * 5
        stranger = [await _open(env.port, "127.0.4.1", UNFINISHED) for _ in range(3)]
        assert parse_head(await _answered(stranger[2], 5.0) or b"")[0] == 429
        for client in (*conns, *stranger):
            await client.close()
