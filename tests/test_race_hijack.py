"""A stranger who knows the token races the real peer (issue 13, item 5).

Real server, real clients on loopback. The stranger connects from 127.0.0.2, an
address that is none of the peer's (every 127/8 address is loopback on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from rdv_core.client._client import Client
from rdv_core.client._inbound import foreign_inbound
from rdv_core.client._pickers import WaitConstant
from rdv_core.events import Event, InboundRejected, SelfAddrsGathered
from rdv_core.wire import Addr

from tests.race_support import LOOP, client, exchange, of


async def test_a_stranger_preconnected_with_the_token_is_not_taken_for_the_peer(
    url: str,
) -> None:
    a_events: list[Event] = []
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        a_events.append(event)
        if isinstance(event, SelfAddrsGathered) and not port.done():
            port.set_result(event.port)

    accepter = Client(spaces=LOOP, timeout=10, on_event=on_event)
    accept = asyncio.create_task(accepter.accept(url, "chat-42"))
    # While the accepter waits in the lobby, the stranger connects to its listener
    # and plays the dialer that already picked this conn.
    stranger = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stranger.bind(("127.0.0.2", 0))
    stranger.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(stranger, ("127.0.0.1", await port))
    reader, writer = await asyncio.open_connection(sock=stranger)
    writer.write(b"rdv/1 DIAL chat-42\nCONTINUE\nI am your peer\n")
    await writer.drain()
    d = await client(picker=WaitConstant(0.3)).dial(url, "chat-42")
    a = await accept
    async with d, a:
        assert str(a.remote_addr.ip) != "127.0.0.2"
        await exchange(d, a)
    with contextlib.suppress(ConnectionResetError):  # a FIN or a reset, not one byte
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    rejected = of(a_events, InboundRejected)
    assert [r.candidate.addr.split(":")[0] for r in rejected] == ["127.0.0.2"]
    assert "not one of the peer's addresses" in rejected[0].reason


def test_foreign_inbound_compares_ips_not_ports() -> None:
    peer = [Addr.parse("10.0.0.2:4000"), Addr.parse("203.0.113.7:40123")]
    assert foreign_inbound(Addr.parse("203.0.113.7:5555"), peer) is None
    assert foreign_inbound(Addr.parse("[::ffff:10.0.0.2]:1"), peer) is None
    reason = foreign_inbound(Addr.parse("198.51.100.9:40123"), peer)
    assert reason is not None and "198.51.100.9" in reason and "10.0.0.2" in reason
    assert foreign_inbound(Addr.parse("10.0.0.2:1"), []) is not None
