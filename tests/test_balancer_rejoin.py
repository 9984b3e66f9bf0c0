"""A waiting client whose backend dies rejoins through the real HAProxy of ``deploy/``.

HAProxy answers a client waiting in the lobby of a backend that died ``502``
(tests/test_scale_backend_lost.py); the client ended there, and its partner, coming later,
met an empty lobby on the next backend of the ring. With a rejoin policy
(docs/PROTOCOL.md section 18) the client sends its request again through HAProxy, which
takes it to the backend its partner's request reaches too: they meet.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from rdv_core import AddrSpace, Client, LobbyRejoined, PickFirst, RejoinPolicy, ServerLost
from rdv_core.events import Event

from tests.balancer_support import (
    BACKEND_ARGS,
    Backend,
    backends,
    balancer,
    client,
    exchange,
    missing_binary,
    new_tokens,
    wait_until,
)


def _joined(backend: Backend, token: str) -> int:
    return [j["token"] for j in backend.joined()].count(token)


async def test_a_waiting_client_whose_backend_dies_rejoins_through_haproxy(
    tmp_path: Path,
) -> None:
    reason = missing_binary("haproxy")
    if reason is not None:
        pytest.skip(reason)
    events: list[Event] = []
    async with backends(tmp_path, BACKEND_ARGS["haproxy"]) as pool:
        addrs = [b.addr for b in pool]
        async with balancer("haproxy", tmp_path, addrs) as lb:
            (token,) = new_tokens(1)
            waiting = Client(
                spaces=AddrSpace.NONE,
                picker=PickFirst(),
                timeout=20,
                rejoin=RejoinPolicy(),
                on_event=events.append,
            )
            accept = asyncio.create_task(waiting.accept(lb.url, token))
            try:
                await wait_until(lambda: any(_joined(b, token) for b in pool), 15)
                home = next(b for b in pool if _joined(b, token))
                home.process.send_signal(signal.SIGKILL)
                others = [b for b in pool if b is not home]
                # The rejoin reached a survivor through HAProxy (the ring's next server).
                await wait_until(lambda: any(_joined(b, token) for b in others), 15)
                dialer = await client(p2p=False).dial(lb.url, token)
                async with asyncio.timeout(15):
                    accepter = await accept
            finally:
                if not accept.done():
                    accept.cancel()
                await asyncio.gather(accept, return_exceptions=True)
            try:
                await exchange(dialer, accepter)
            finally:
                await asyncio.gather(dialer.close(), accepter.close(), return_exceptions=True)
    lost = [e for e in events if isinstance(e, ServerLost)]
    assert lost and lost[0].why.startswith("502 "), lost
    assert any(isinstance(e, LobbyRejoined) for e in events), events
