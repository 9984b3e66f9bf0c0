"""The client's errors against the real rdv server, on loopback: rejections, timeouts, hang-ups.

Every test starts a real :class:`RdvServer` with its native front on 127.0.0.1 (or a
server that misbehaves on purpose) and real clients restricted to the loopback address spaces.
"""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from rdv_core.client import Client
from rdv_core.errors import (
    RdvError,
    RdvProtocolError,
    RdvTimeoutError,
    ServerConnectError,
    ServerRejectedError,
)
from rdv_core.events import (
    AttemptFailed,
    Event,
    ObservedAddrWarning,
    ServerRejected,
)
from rdv_core.server._core import PairHandler, PeerInfo, RdvServer, Reject
from rdv_core.server._native import start_native
from rdv_core.wire import AddrSpace

from tests.race_support import client, exchange, of, pair

# ----- errors


async def test_lobby_timeout_surfaces_status_and_body() -> None:
    server = RdvServer(lobby_timeout=0.2)
    front = await start_native(server, host="127.0.0.1", port=0)
    events: list[Event] = []
    try:
        with pytest.raises(ServerRejectedError) as info:
            await client(events).accept(front.url, "lonely")
    finally:
        await server.close()
        await front.close()
    err = info.value
    assert (err.status, err.reason, err.body) == (408, "Request Timeout", "no matching peer found")
    assert isinstance(err, ConnectionError) and isinstance(err, RdvError)
    assert "408" in str(err) and "no matching peer found" in str(err)
    assert of(events, ServerRejected)[0].status == 408
    assert of(events, AttemptFailed)[0].reason == "rejected"


async def test_replaced_request_gets_409(url: str) -> None:
    first = asyncio.create_task(client().accept(url, "dup"))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(client().accept(url, "dup"))
    with pytest.raises(ServerRejectedError) as info:
        await first
    assert info.value.status == 409
    assert info.value.body == "replaced by another conn"
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_pair_rejected_by_the_server_handler() -> None:
    class DenyAll(PairHandler):
        def on_join(self, peer: PeerInfo) -> None:
            if peer.header("Authorization") != "Bearer ok":
                raise Reject(401, "bad credentials")

    server = RdvServer(handler=DenyAll())
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        with pytest.raises(ServerRejectedError) as info:
            await client().dial(front.url, "tok")
        assert info.value.status == 401
        assert "bad credentials" in info.value.body
        # The right header is sent and passes.
        ok = [("Authorization", "Bearer ok")]
        d, a = await pair(front.url, client(headers=ok), client(headers=ok))
        async with d, a:
            await exchange(d, a)
    finally:
        await server.close()
        await front.close()


async def test_timeout_while_waiting_for_the_peer(url: str) -> None:
    events: list[Event] = []
    with pytest.raises(RdvTimeoutError) as info:
        await client(events, timeout=0.3).dial(url, "nobody")
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, RdvError)
    assert info.value.stage == "waiting for the peer"
    assert of(events, AttemptFailed)[-1].reason == "timeout"


async def test_unreachable_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServerConnectError) as info:
        await client().dial(f"http://127.0.0.1:{port}", "tok")
    assert info.value.errno == errno.ECONNREFUSED
    assert isinstance(info.value, ConnectionError)


async def test_bad_url_and_header_fail_before_any_traffic() -> None:
    with pytest.raises(ValueError, match="http"):
        await client().dial("ftp://127.0.0.1:1/", "tok")
    with pytest.raises(ValueError, match="header"):
        await client(headers=[("Bad Name", "x")]).dial("http://127.0.0.1:1/", "tok")


async def test_server_closing_without_answer_is_a_protocol_error() -> None:
    """A listener that reads the request and hangs up (not an rdv server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    loop = asyncio.get_running_loop()

    async def hang_up() -> bytes:
        conn, _ = await loop.sock_accept(listener)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await loop.sock_recv(conn, 4096)
            return data

    task = asyncio.create_task(hang_up())
    try:
        with pytest.raises(RdvProtocolError, match="closed the connection before answering"):
            await client().dial(f"http://127.0.0.1:{listener.getsockname()[1]}/", "tok")
        await task
    finally:
        listener.close()


async def test_observed_address_warning_on_loopback(url: str) -> None:
    events: list[Event] = []
    d, a = await pair(url, client(events), client())
    async with d, a:
        pass
    warnings = of(events, ObservedAddrWarning)
    assert len(warnings) == 1
    assert warnings[0].observed_addr == str(d.meta.observed_addr)
    assert "public IPv4" in warnings[0].message


@pytest.mark.parametrize(
    ("observed", "warns"),
    [("[2a00:1450:4001::1]:5000", False), ("[fd00::5]:5000", True), ("10.0.0.2:5000", True)],
)
async def test_a_public_ipv6_observed_address_is_not_warned_about(
    observed: str, warns: bool
) -> None:
    # A server reached over IPv6 sees our public IPv6 address: no NAT stands in the way, and
    # "p2p across NATs will likely fail" would be wrong. Private ones still warn.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    accepted: list[socket.socket] = []

    async def serve() -> None:
        sock, _ = await loop.sock_accept(listener)
        accepted.append(sock)
        request = b""
        while b"\r\n\r\n" not in request:
            request += await loop.sock_recv(sock, 4096)
        await loop.sock_sendall(
            sock,
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
            b"Rdv-Observed-Addr: " + observed.encode() + b"\r\nUpgrade: rdv/1\r\n\r\n",
        )

    events: list[Event] = []
    server = asyncio.ensure_future(serve())
    try:
        conn = await Client(spaces=AddrSpace.NONE, timeout=10, on_event=events.append).dial(
            f"http://127.0.0.1:{listener.getsockname()[1]}", "tok"
        )
        await server
        async with conn:
            assert conn.is_relay
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
    assert bool(of(events, ObservedAddrWarning)) is warns, events
