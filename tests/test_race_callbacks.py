"""The race's end is synchronous (client/_exchange.py, client/_accepting.py): what it must keep.

``dial()`` and ``accept()`` return in the loop turn of the pick; nothing the race started
may still hold the winner then, and every conn it started is closed or handed over.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from rdv_core.client._conn import Conn
from rdv_core.client._pickers import Offers, Picker, PickFirst
from rdv_core.events import Event, HandshakeFailed, HandshakeOk
from rdv_core.wire import AddrSpace

from tests.race_support import LOOP, client, exchange, of, pair

T = TypeVar("T")


class RelayAfter(Picker):
    """Takes the relay after a while (the direct conns are up by then)."""

    async def pick(self, offers: Offers[T]) -> T | None:
        await asyncio.sleep(0.1)
        return offers.relay

    def describe(self) -> str:
        return "relay-after"


async def test_the_winner_reads_at_once_relay_and_direct(url: str) -> None:
    """A read right after ``dial()`` returns, in the same loop turn, works.

    The dialer watched the relay with a read of its own until the pick: had that read still
    been pending (its task cancelled but not yet run), the application's first read would
    raise ``RuntimeError: read() called while another coroutine is already waiting``.
    """
    cases = [
        (AddrSpace.NONE, AddrSpace.NONE, None),
        (LOOP, LOOP, None),
        (LOOP, LOOP, PickFirst()),
        # The relay is picked after a wait, the dials long done: the dialer's relay watch
        # was under way then.
        (LOOP, LOOP, RelayAfter()),
    ]
    for spaces, theirs, picker in cases:
        token = f"now-{spaces}-{theirs}-{picker}"

        async def accept_and_write(token: str = token, spaces: AddrSpace = theirs) -> Conn:
            a = await client(spaces=spaces).accept(url, token)
            a.writer.write(b"hello")
            return a

        accepting = asyncio.create_task(accept_and_write())
        await asyncio.sleep(0.05)
        d = await client(spaces=spaces, picker=picker).dial(url, token)
        assert await d.reader.readexactly(5) == b"hello"  # the same turn as the pick
        a = await accepting
        async with d, a:
            await exchange(d, a)


async def test_every_direct_conn_ends_with_an_event_before_dial_returns(url: str) -> None:
    """Handshakes under way at the pick end as ``cancelled`` before ``dial()`` returns."""
    for _ in range(5):
        d_events: list[Event] = []
        a_events: list[Event] = []
        d, a = await pair(url, client(d_events), client(a_events), token="ends")
        n = len(d_events)
        async with d, a:
            await exchange(d, a)
        assert len(d_events) == n  # nothing comes after the return
        for events in (d_events, a_events):
            assert of(events, HandshakeOk)
            for failed in of(events, HandshakeFailed):
                assert failed.reason in ("cancelled", "misdial", "eof", "reset")
