"""Fast start's early data: the dialer's first bytes in the write of ``CONTINUE`` and
``HELLO``, the accepter's delivery before its pick's events (docs/PROTOCOL.md 16.2, 16.9).

Real sockets on loopback: a scripted server that answers ``101`` and records what the
dialer wrote, and the real rdv server with two real peers.
"""

from __future__ import annotations

import asyncio
import os
import socket

from rdv_core.client import Client
from rdv_core.events import (
    Event,
    FastStartNegotiated,
    FirstByteReceived,
    Picked,
    RelayReady,
    ServerResponded,
)
from rdv_core.faststart._frames import FrameParser, Kind
from rdv_core.wire import AddrSpace
from rdv_tui.cli.pipe import StdinReader

from tests.race_support import client, of, pair
from tests.test_faststart_first_byte import FAST_101, peek


async def test_the_dialers_early_data_leaves_in_the_write_of_continue_and_hello() -> None:
    accepted: list[socket.socket] = []
    seen_at_event: dict[str, bytes] = {}
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    asked: list[int] = []

    async def serve() -> None:
        sock, _ = await loop.sock_accept(listener)
        accepted.append(sock)
        request = b""
        while b"\r\n\r\n" not in request:
            request += await loop.sock_recv(sock, 4096)
        assert not asked  # nothing is taken before the 101
        await loop.sock_sendall(sock, FAST_101)

    def on_event(event: Event) -> None:
        if isinstance(event, ServerResponded | RelayReady | FastStartNegotiated | Picked):
            seen_at_event.setdefault(type(event).__name__, peek(accepted[0]))

    def early() -> bytes:
        asked.append(1)
        return b"early bytes"

    server = asyncio.ensure_future(serve())
    port = listener.getsockname()[1]
    dialer = Client(
        spaces=AddrSpace.NONE, timeout=10, fast_start=True, on_event=on_event, early_data=early
    )
    try:
        conn = await dialer.dial(f"http://127.0.0.1:{port}", "tok")
        await server
        try:
            conn.writer.write(b" and later ones")
            await asyncio.sleep(0.05)
            raw = peek(accepted[0])
        finally:
            # This peer never sends its HELLO: a clean close would wait 10 s for it and
            # then say so (``async with conn`` raises it, docs/PROTOCOL.md 16.6).
            conn.writer.transport.abort()
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
    assert asked == [1]  # asked once, at the pick
    # Even the 101's own events are written after the first write (held until then).
    assert list(seen_at_event) == ["ServerResponded", "RelayReady", "FastStartNegotiated", "Picked"]
    for name in seen_at_event:
        first = seen_at_event[name]
        assert first.startswith(b"CONTINUE\n"), (name, first)
        frames = FrameParser().feed(first[len(b"CONTINUE\n") :])
        assert [f.kind for f in frames] == [Kind.HELLO, Kind.DATA], name
        assert frames[1].value == 0 and frames[1].data == b"early bytes"
    # The later write follows at the next offset: nothing doubled, nothing reordered.
    frames = FrameParser().feed(raw[len(b"CONTINUE\n") :])
    data = [(f.value, f.data) for f in frames if f.kind == Kind.DATA]
    assert data == [(0, b"early bytes"), (len(b"early bytes"), b" and later ones")]


async def test_early_data_reaches_the_accepter_first_and_once(url: str) -> None:
    d_events: list[Event] = []
    a_events: list[Event] = []
    first = os.urandom(100_000)  # more than one inline write: the writer task sends the rest
    d_client = client(d_events, fast_start=True, early_data=lambda: first)
    d, a = await pair(url, d_client, client(a_events, fast_start=True))
    try:
        d.writer.write(b"then this")
        got = await asyncio.wait_for(a.reader.readexactly(len(first) + 9), 5)
        assert got == first + b"then this"
        # The accepter handed the early bytes over before its pick's events.
        kinds = [type(e) for e in a_events]
        assert kinds.index(FirstByteReceived) < kinds.index(Picked)
        # Its events of the 101, held until then, keep their order.
        order = [ServerResponded, RelayReady, FastStartNegotiated, FirstByteReceived, Picked]
        firsts = [kinds.index(k) for k in order]
        assert firsts == sorted(firsts)
        assert of(a_events, FirstByteReceived)[0].on_relay
    finally:
        await d.close()
        await a.close()


async def until_queued(reader: StdinReader) -> None:
    """Until the reader's thread handed a chunk over (it has no event to await)."""
    async with asyncio.timeout(5):
        while reader.queue.empty():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_the_stdin_reader_hands_out_a_ready_chunk_and_keeps_the_eof() -> None:
    r, w = os.pipe()
    reader = StdinReader(r, asyncio.get_running_loop())
    try:
        assert reader.take_ready() == b""  # nothing read yet
        os.write(w, b"ready")
        reader.start()
        await until_queued(reader)
        assert reader.take_ready() == b"ready" and reader.taken_early == 5
        os.close(w)
        w = -1
        await until_queued(reader)
        assert reader.take_ready() == b""  # an EOF is not early data ...
        assert await reader.get() == b""  # ... it stays for the pump
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
