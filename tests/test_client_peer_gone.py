"""The accepter whose dialer vanished after the ``101`` says so in its error's causes.

The server closes the accepter's relay when the dialer goes direct, and also when the dialer
leaves (cancelled, killed) or the server dies without a reset (docs/PROTOCOL.md section 11,
"The accepter and the relay"). The accepter's ``NoConnectionError`` carried no cause for the
relay then: a relay-only accepter got a bare "no conn to the peer could be used", with
``causes == ()``, although the README promises one line per failed candidate. Real server,
real sockets on loopback.
"""

from __future__ import annotations

import asyncio

import pytest

from rdv_core.client._client import Client
from rdv_core.client._pickers import WaitConstant
from rdv_core.errors import NoConnectionError
from rdv_core.events import Discarded, Event, RelayReady
from rdv_core.wire import EXTENSIONS_HEADER, FAST_START, AddrSpace, build_request, parse_server_url

from tests.race_support import client, of


async def test_relay_closed_before_continue_is_a_cause(url: str) -> None:
    accepter_events: list[Event] = []
    paired = asyncio.Event()

    def on_event(event: Event) -> None:
        accepter_events.append(event)
        if isinstance(event, RelayReady):  # paired: both relays are up
            paired.set()

    # Relay only: the relay is the accepter's one candidate. The dialer holds it unpicked.
    dial = asyncio.create_task(
        client(spaces=AddrSpace.NONE, picker=WaitConstant(60), timeout=60).dial(url, "gone")
    )
    accept = asyncio.create_task(
        Client(spaces=AddrSpace.NONE, timeout=60, on_event=on_event).accept(url, "gone")
    )
    await asyncio.wait_for(paired.wait(), 20)
    dial.cancel()  # the dialer leaves: the server closes the accepter's relay
    with pytest.raises(asyncio.CancelledError):
        await dial
    with pytest.raises(NoConnectionError) as info:
        await asyncio.wait_for(accept, 20)
    assert len(info.value.causes) == 1
    assert info.value.causes[0].startswith("relay: ")
    assert "the dialer went direct or left" in info.value.causes[0]
    assert info.value.causes[0] in str(info.value)
    # The event says the same, not that the dialer surely went direct.
    (discarded,) = of(accepter_events, Discarded)
    assert "or left" in discarded.reason


async def test_fast_start_relay_closed_before_continue_is_a_cause(url: str) -> None:
    # A fast-start dialer takes the relay at once: only one that leaves between its 101
    # and its CONTINUE closes the accepter's relay first. A raw DIAL that offers fast
    # start, reads its 101 and hangs up is that dialer.
    server = parse_server_url(url)
    accept = asyncio.create_task(
        Client(spaces=AddrSpace.NONE, timeout=60, fast_start=True).accept(url, "gone-fast")
    )
    await asyncio.sleep(0.2)  # the accepter in the lobby first
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            build_request("DIAL", server, "gone-fast", [], [(EXTENSIONS_HEADER, FAST_START)])
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert head.startswith(b"HTTP/1.1 101 ")
    finally:
        writer.close()
    with pytest.raises(NoConnectionError) as info:
        await asyncio.wait_for(accept, 20)
    assert info.value.causes == (
        "relay: the server closed the relay: the dialer went direct or left",
    )
