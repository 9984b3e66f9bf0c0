"""A client that gives up in the lobby leaves it, behind the real HAProxy and nginx of
``deploy/``.

Direct, a lobby client that closes its conn loses its slot at once (README "Running a
server"). Behind HAProxy it did not: HAProxy, by default HTTP-conservative, took the close for
a half-close and kept the request open at the backend, so the slot stayed taken by a ghost
until ``--lobby-timeout``. The next ``rdv accept`` of the token met the ghost and failed:
``rdv accept: no conn to the peer could be used (relay: the server closed the relay: the
dialer went direct or left)``. ``option abortonclose`` makes HAProxy pass the abort on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.balancer_support import (
    BACKEND_ARGS,
    BALANCERS,
    backends,
    balancer,
    client,
    exchange,
    missing_binary,
    new_tokens,
    wait_until,
)


@pytest.mark.parametrize("kind", BALANCERS)
async def test_a_dialer_that_gives_up_leaves_no_ghost(kind: str, tmp_path: Path) -> None:
    reason = missing_binary(kind)
    if reason is not None:
        pytest.skip(reason)
    async with backends(tmp_path, BACKEND_ARGS[kind], count=1) as pool:
        (backend,) = pool
        async with balancer(kind, tmp_path, [backend.addr] * 3) as lb:
            (token,) = new_tokens(1)
            gave_up = asyncio.create_task(client(p2p=False).dial(lb.url, token))

            def types() -> list[object]:
                return [e["type"] for e in backend.events() if e.get("token") == token]

            await wait_until(lambda: "PeerJoined" in types(), 15)
            gave_up.cancel()  # Ctrl-C: the client closes its conn to the balancer
            await asyncio.gather(gave_up, return_exceptions=True)
            # The backend hears of it and frees the slot (before, behind HAProxy: never,
            # until the lobby timeout) ...
            await wait_until(lambda: "LobbyLeft" in types(), 10)
            # ... so the token's next pair meets, not the ghost.
            accepter, dialer = await asyncio.gather(
                client(p2p=False).accept(lb.url, token), client(p2p=False).dial(lb.url, token)
            )
            try:
                await exchange(dialer, accepter)
            finally:
                await asyncio.gather(dialer.close(), accepter.close())
    assert types().count("PairMatched") == 1, types()
