"""Fast start on our side, rdv/1 peers and servers on the other: nothing changes for them.

docs/PROTOCOL.md section 16.1: the offer is a request header that a Go server does not
pass on, and a Go client never sends; without the peer's offer our client speaks plain
rdv/1, byte for byte. The Go side is played by its recorded bytes (tests/go_vectors.py).
"""

from __future__ import annotations

import asyncio

from rdv_core.events import Event, FastStartNegotiated
from rdv_core.wire import AddrSpace

from tests.go_vectors import SEGMENTED_101_RELAY, UNUSUAL_TOKENS
from tests.race_support import LOOP, client, of
from tests.server_support import RawClient


async def test_fast_start_client_behind_a_go_server_is_plain_rdv1() -> None:
    """The Go server's 101 (20 segments, no offer), its CONTINUE and the peer's data."""
    requests: list[bytes] = []
    after: list[bytes] = []

    async def go_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        for segment in SEGMENTED_101_RELAY:
            writer.write(segment)
            await writer.drain()
            await asyncio.sleep(0.001)
        try:
            async with asyncio.timeout(0.3):
                after.append(await reader.read(100))
        except TimeoutError:
            after.append(b"<silence>")
        writer.close()

    server = await asyncio.start_server(go_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events: list[Event] = []
    try:
        conn = await client(events, spaces=AddrSpace.NONE, fast_start=True).accept(
            f"http://127.0.0.1:{port}", "tok"
        )
        async with conn:
            assert conn.upgrader is None and conn.is_relay
            data = await asyncio.wait_for(conn.reader.readexactly(34), 5)
            assert data == b"hello from the dialer\nsecond line\n"
            await asyncio.sleep(0.35)
    finally:
        server.close()
        await server.wait_closed()
    assert b"\r\nRdv-Extensions: fast-start/1\r\n" in requests[0]
    assert after == [b"<silence>"]  # no HELLO, nothing: the Go peer owns the stream
    assert not of(events, FastStartNegotiated)


async def test_go_client_meets_a_fast_start_peer_at_our_server(url: str) -> None:
    """A Go dialer's request bytes, our accepter offering fast start: plain rdv/1."""
    go = UNUSUAL_TOKENS[0]
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    raw = RawClient(reader, writer)
    raw.send(go.request.replace(b"127.0.0.1:18090", f"{host}:{port}".encode()))
    events: list[Event] = []
    accepting = asyncio.create_task(
        client(events, spaces=LOOP, fast_start=True).accept(url, go.token)
    )
    head = await raw.read_head()
    # The Go client learns of the offer in one more 101 header, which it ignores.
    assert b"\r\nRdv-Peer-Extensions: fast-start/1\r\n" in head
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n")
    raw.send(b"CONTINUE\nraw bytes from Go\n")
    conn = await asyncio.wait_for(accepting, 10)
    async with conn:
        assert conn.upgrader is None and conn.is_relay
        assert await asyncio.wait_for(conn.reader.readline(), 5) == b"raw bytes from Go\n"
        conn.writer.write(b"raw answer\n")
        assert await raw.read_exactly(len(b"raw answer\n")) == b"raw answer\n"
    writer.close()
    assert not of(events, FastStartNegotiated)
