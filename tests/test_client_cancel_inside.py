"""A cancel asked for inside the attempt's own task still closes the attempt's conn.

An ``on_event`` callback runs in the task of ``dial()``/``accept()``. When it cancels that
task (``asyncio.current_task().cancel()``, or a scope around it) at ``Picked``, nothing
awaits between the pick and the return, and asyncio then drops the returned value to
deliver the cancel: the ``Conn`` was lost with its socket still open, the peer kept a conn
that never ended, and no ``AttemptFailed`` said so (README "Use it as a library": cancelling
closes every socket of the attempt). Real server, real sockets; the garbage collector is
off so that it cannot close the lost socket for us.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator

import pytest

from rdv_core.client._client import Client
from rdv_core.client._conn import Conn
from rdv_core.client._pickers import Picker, PickFirst, WaitForP2P
from rdv_core.events import AttemptFailed, Event, Picked

from tests.race_support import LOOP, client, of
from tests.test_client_leaks import fd_count, settled


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("side", "picker", "relay"),
    [
        ("dial", PickFirst(), True),
        ("accept", PickFirst(), True),
        ("dial", WaitForP2P(1.0), False),
    ],
    ids=["dialer-relay", "accepter-relay", "dialer-direct"],
)
async def test_cancel_from_on_event_at_the_pick_closes_the_conn(
    url: str, side: str, picker: Picker, relay: bool
) -> None:
    warm_d, warm_a = await asyncio.gather(
        client(picker=picker).dial(url, "warm"), client().accept(url, "warm")
    )
    await warm_d.close()
    await warm_a.close()
    with no_gc():
        fds, tasks = await settled(fd_count(), len(asyncio.all_tasks()))
        events: list[Event] = []
        task: asyncio.Task[Conn] | None = None

        def cancel_at_pick(event: Event) -> None:
            events.append(event)
            if isinstance(event, Picked) and task is not None:
                task.cancel()

        mine = Client(
            spaces=LOOP,
            picker=picker,
            timeout=10,
            on_event=cancel_at_pick,
        )
        other = client(picker=picker)
        if side == "dial":
            task = asyncio.create_task(mine.dial(url, "inside"))
            peer = asyncio.create_task(other.accept(url, "inside"))
        else:
            task = asyncio.create_task(mine.accept(url, "inside"))
            peer = asyncio.create_task(other.dial(url, "inside"))
        with pytest.raises(asyncio.CancelledError):
            await task
        picked = of(events, Picked)
        assert picked and picked[0].is_relay is relay
        assert of(events, AttemptFailed)[-1].reason == "cancelled"
        # The peer got its conn (the pick was on the wire); ours is closed, so it ends.
        conn = await asyncio.wait_for(peer, 10)
        async with conn:
            assert await asyncio.wait_for(conn.reader.read(), 10) == b""
        assert await settled(fds, tasks) == (fds, tasks)
