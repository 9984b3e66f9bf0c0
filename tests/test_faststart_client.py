"""Fast start end to end on loopback: real server, real peers, real sockets.

docs/PROTOCOL.md section 16: with both peers offering it, the dialer takes the relay at
once, bytes flow from the first write, and the conn moves to the direct path in the
background; with either side not offering it, the attempt is plain rdv/1.
"""

from __future__ import annotations

import asyncio

from rdv_core.client._conn import Conn
from rdv_core.events import (
    Event,
    FastStartNegotiated,
    Picked,
    RelayRetired,
    Upgraded,
    UpgradeFailed,
    UpgradeStarted,
)
from rdv_core.wire import AddrSpace

from tests.race_support import client, exchange, of, pair


async def wait_direct(conn: Conn, within: float = 5.0) -> None:
    assert conn.upgrader is not None
    await asyncio.wait_for(conn.upgrader.direct.wait(), within)


async def test_bytes_flow_on_the_relay_then_the_conn_moves_direct(url: str) -> None:
    d_events: list[Event] = []
    a_events: list[Event] = []
    d, a = await pair(url, client(d_events, fast_start=True), client(a_events, fast_start=True))
    try:
        assert d.is_relay and a.is_relay  # the dialer took the relay at once
        await exchange(d, a)
        await wait_direct(d)
        await wait_direct(a)
        assert not d.is_relay and not a.is_relay
        assert d.remote_addr.ip.is_loopback
        await exchange(d, a)  # and on the direct path
        for events in (d_events, a_events):
            assert [e.confirmed for e in of(events, FastStartNegotiated)][-1] is True
            assert of(events, UpgradeStarted) and of(events, RelayRetired)
            (up,) = of(events, Upgraded)
            assert up.attempt == 1 and up.after_s < 3
            assert not of(events, UpgradeFailed)
        assert of(d_events, Picked)[0].is_relay  # the first pick: the relay, at once
    finally:
        await d.close()
        await a.close()


async def test_one_side_without_fast_start_is_plain_rdv1(url: str) -> None:
    for d_fast, a_fast in ((True, False), (False, True)):
        events: list[Event] = []
        d, a = await pair(url, client(events, fast_start=d_fast), client(events, fast_start=a_fast))
        try:
            assert d.upgrader is None and a.upgrader is None
            assert not d.is_relay  # the ordinary race went direct on loopback
            assert not of(events, FastStartNegotiated)
            await exchange(d, a)
        finally:
            await d.close()
            await a.close()


async def test_relay_only_spaces_stay_on_the_relay(url: str) -> None:
    events: list[Event] = []
    d, a = await pair(
        url,
        client(events, spaces=AddrSpace.NONE, fast_start=True),
        client(events, spaces=AddrSpace.NONE, fast_start=True),
    )
    try:
        await exchange(d, a)
        assert d.is_relay and a.is_relay
        failed = of(events, UpgradeFailed)
        assert failed and all(f.final and f.reason == "no direct candidate" for f in failed)
        # Half-close travels in-band, even through the relay.
        d.writer.write(b"last words")
        d.writer.write_eof()
        assert await asyncio.wait_for(a.reader.read(), 5) == b"last words"
        a.writer.write(b"still here")
        assert await asyncio.wait_for(d.reader.readexactly(10), 5) == b"still here"
    finally:
        await d.close()
        await a.close()
