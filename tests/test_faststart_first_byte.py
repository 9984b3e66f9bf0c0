"""Fast start's first byte goes first (docs/PROTOCOL.md section 16.2).

The dialer's ``CONTINUE`` and ``HELLO`` are on the wire before it writes any event of
the pick; an application write on an idle path is on the socket when ``write()``
returns (not one event-loop turn later); the accepter hands the first frames to the
application before it parses a big first read; the lab times the first byte from the
dialer's ``101`` on the clock both peers share. Real sockets on loopback throughout.
"""

from __future__ import annotations

import asyncio
import socket

from rdv_core.client import Client
from rdv_core.events import Event, FastStartNegotiated, Picked
from rdv_core.faststart import RELAY, MigratingStream
from rdv_core.faststart._frames import FrameParser, Kind, data_frame, hello_frame
from rdv_core.lab._faststart import judge
from rdv_core.wire import AddrSpace

#: A 101 from a server that passed the accepter's fast-start offer (section 16.1).
FAST_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
    b"Rdv-Observed-Addr: 127.0.0.1:41419\r\nRdv-Peer-Addrs: 127.0.0.1:42555\r\n"
    b"Rdv-Peer-Extensions: fast-start/1\r\nUpgrade: rdv/1\r\n\r\n"
)


def peek(sock: socket.socket) -> bytes:
    """What the peer wrote so far, without waiting (b"" when nothing is there yet)."""
    try:
        return sock.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


async def test_the_dialer_writes_continue_and_hello_before_the_events_of_its_pick() -> None:
    accepted: list[socket.socket] = []
    seen_at_event: dict[str, bytes] = {}
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    loop = asyncio.get_running_loop()

    async def serve() -> None:
        sock, _ = await loop.sock_accept(listener)
        accepted.append(sock)
        request = b""
        while b"\r\n\r\n" not in request:
            request += await loop.sock_recv(sock, 4096)
        await loop.sock_sendall(sock, FAST_101)

    def on_event(event: Event) -> None:
        # What the server's socket holds the moment the dialer reports its pick.
        if isinstance(event, FastStartNegotiated | Picked) and accepted:
            seen_at_event.setdefault(type(event).__name__, peek(accepted[0]))

    server = asyncio.ensure_future(serve())
    port = listener.getsockname()[1]
    dialer = Client(spaces=AddrSpace.NONE, timeout=10, fast_start=True, on_event=on_event)
    try:
        conn = await dialer.dial(f"http://127.0.0.1:{port}", "tok")
        await server
        try:
            assert conn.upgrader is not None and conn.is_relay
        finally:
            # This peer never sends its HELLO: a clean close would wait for it and then
            # say so (``async with conn`` raises it, docs/PROTOCOL.md 16.6).
            conn.writer.transport.abort()
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
    for name in ("FastStartNegotiated", "Picked"):
        raw = seen_at_event[name]
        assert raw.startswith(b"CONTINUE\n"), (name, raw)
        (hello,) = FrameParser().feed(raw[len(b"CONTINUE\n") :])
        assert hello.kind == Kind.HELLO


async def test_a_write_on_an_idle_path_is_on_the_socket_when_write_returns() -> None:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    stream = MigratingStream(reader, writer, first_frames=(hello_frame(b"D", bytes(16)),))
    try:
        stream.writer.write(b"first bytes")
        raw = peek(theirs)  # no await since the write: no loop turn for a writer task
        frames = FrameParser().feed(raw)
        assert [f.kind for f in frames] == [Kind.HELLO, Kind.DATA]
        assert frames[1].data == b"first bytes"
    finally:
        stream.abort()
        theirs.close()
        await asyncio.sleep(0)


async def test_the_first_frames_reach_the_application_before_a_big_first_read_is_parsed() -> None:
    ours, theirs = socket.socketpair()
    _, writer = await asyncio.open_connection(sock=ours)
    # The relay's reader already holds the peer's HELLO and a quarter megabyte of DATA
    # (a dialer that wrote at once): all of it is there for the stream's first read.
    payload = bytes(range(256)) * 1024
    frames = [hello_frame(b"A", bytes(16))]
    frames += [data_frame(at, payload[at : at + 4096]) for at in range(0, len(payload), 4096)]
    relay = asyncio.StreamReader()
    relay.feed_data(b"".join(frames))
    held_at_first: list[int] = []
    stream = MigratingStream(
        relay, writer, on_first_data=lambda pid: held_at_first.append(stream.core.held)
    )
    relay_first = stream.paths[RELAY].first
    assert relay_first is not None
    try:
        got = await asyncio.wait_for(stream.reader.readexactly(len(payload)), 5)
        assert got == payload
        assert relay_first.done() and relay_first.result().kind == Kind.HELLO
        # Handed over after a first small read, not after parsing all 256 KiB.
        assert held_at_first and 0 < held_at_first[0] <= 16 * 1024
    finally:
        stream.abort()
        theirs.close()
        await asyncio.sleep(0)


def test_the_lab_times_the_first_byte_from_the_dialers_101_on_the_shared_clock() -> None:
    # The dialer's clock started at 100.000 s, the accepter's at 99.000 s (host monotonic).
    dialer = [
        {"type": "ServerResponded", "t": 0.500},  # 100.500 on the host
        {"type": "FastStartNegotiated", "t": 0.501, "confirmed": False, "origin": None},
        {"type": "FastStartNegotiated", "t": 0.504, "confirmed": True, "origin": 100.0},
        {"type": "UpgradeAttempt", "t": 0.51, "attempt": 1, "relay_rtt_s": 0.002},
    ]
    accepter = [
        {"type": "ServerResponded", "t": 1.501},  # 100.501: its 101 came 1 ms later
        {"type": "FirstByteReceived", "t": 1.504, "on_relay": True},  # 100.504
        {"type": "FastStartNegotiated", "t": 1.505, "confirmed": True, "origin": 99.0},
    ]
    run = judge(dialer, accepter)
    assert run.first_byte_ms is not None and abs(run.first_byte_ms - 4.0) < 1e-6
    assert run.first_byte_a101_ms is not None and abs(run.first_byte_a101_ms - 3.0) < 1e-6
    assert run.relay_rtt_ms == 2.0
    # Without the origins (an older rdv), no cross-clock figure is made up.
    for e in dialer + accepter:
        e.pop("origin", None)
    assert judge(dialer, accepter).first_byte_ms is None
