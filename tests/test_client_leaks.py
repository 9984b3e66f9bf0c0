"""The client leaks nothing against the real rdv server: fds and tasks come back down.

After success, failure and cancellation at any moment, the process's file descriptors and
the loop's tasks return to their counts before the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from rdv_core.client._client import Client
from rdv_core.client._pickers import WaitConstant
from rdv_core.errors import (
    NoConnectionError,
    RdvError,
    RdvTimeoutError,
)
from rdv_core.events import (
    AttemptFailed,
    Event,
    HandshakeOk,
)
from rdv_core.wire import AddrSpace

from tests.race_support import LOOP, client, exchange, of, pair

# ----- leaks


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(fds: int, tasks: int) -> tuple[int, int]:
    """Wait (up to 2 s) for fd and task counts to come back down; return the last counts."""
    now = (fd_count(), len(asyncio.all_tasks()))
    for _ in range(100):
        now = (fd_count(), len(asyncio.all_tasks()))
        if now[0] <= fds and now[1] <= tasks:
            break
        await asyncio.sleep(0.02)
    return now


async def test_nothing_leaks_on_success_failure_or_cancellation(url: str) -> None:
    # Warm up (lazy imports, the loop's self-pipe, the resolver).
    d, a = await pair(url, client(), client(), token="warm")
    await d.close()
    await a.close()
    fds, tasks = await settled(fd_count(), len(asyncio.all_tasks()))

    # Success, p2p and relay: close the conns, everything goes.
    for spaces in (LOOP, AddrSpace.NONE):
        d, a = await pair(url, client(spaces=spaces), client(spaces=spaces), token=f"ok{spaces}")
        await d.close()
        await a.close()
        assert await settled(fds, tasks) == (fds, tasks)

    # Failure: timeout in the lobby.
    with pytest.raises(RdvTimeoutError):
        await client(timeout=0.1).dial(url, "alone")
    assert await settled(fds, tasks) == (fds, tasks)

    # Cancellation in the middle of the race: both sides hold direct conns and dials.
    d_events: list[Event] = []
    handshaken = asyncio.Event()

    def on_event(event: Event) -> None:
        d_events.append(event)
        if isinstance(event, HandshakeOk):
            handshaken.set()

    dialer = Client(spaces=LOOP, picker=WaitConstant(5), timeout=10, on_event=on_event)
    dial = asyncio.create_task(dialer.dial(url, "cancel"))
    accept = asyncio.create_task(client().accept(url, "cancel"))
    await asyncio.wait_for(handshaken.wait(), 5)
    assert fd_count() > fds
    dial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dial
    # The accepter sees the relay close and no CONTINUE: it fails, cleanly.
    with pytest.raises(NoConnectionError):
        await accept
    assert await settled(fds, tasks) == (fds, tasks)
    assert of(d_events, AttemptFailed)[-1].reason == "cancelled"

    # Cancellation while waiting in the lobby.
    lobby = asyncio.create_task(client().accept(url, "lobby"))
    await asyncio.sleep(0.1)
    lobby.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lobby
    assert await settled(fds, tasks) == (fds, tasks)


async def test_many_attempts_in_a_row(url: str) -> None:
    for i in range(10):
        d, a = await pair(url, client(), client(), token=f"row-{i}")
        async with d, a:
            assert not d.is_relay
            await exchange(d, a)


async def test_cancelling_at_any_moment_leaks_nothing(url: str) -> None:
    """Cancel both peers after 0..20 ms: in the server connect, the lobby, the race."""
    d, a = await pair(url, client(), client(), token="warm-cancel")
    await d.close()
    await a.close()
    fds, tasks = await settled(fd_count(), len(asyncio.all_tasks()))
    for i, delay in enumerate((0, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.006, 0.01, 0.02)):
        dial = asyncio.create_task(client(picker=WaitConstant(0.05)).dial(url, f"c{i}"))
        accept = asyncio.create_task(client().accept(url, f"c{i}"))
        await asyncio.sleep(delay)
        dial.cancel()
        accept.cancel()
        for task in (dial, accept):
            with contextlib.suppress(asyncio.CancelledError, RdvError):
                conn = await task
                await conn.close()
        assert await settled(fds, tasks) == (fds, tasks), f"leak after cancelling at {delay}s"
