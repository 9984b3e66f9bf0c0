"""Direct conns as bare sockets (client/_direct.py) and the loopback family gate (_loopback.py)."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from rdv_core.client._client import open_listeners
from rdv_core.client._direct import DirectConn
from rdv_core.client._exchange import Exchanges
from rdv_core.client._link import PeerClosed
from rdv_core.client._loopback import LOOPBACK_STAGGER, SKIP_REASON, LoopbackGate
from rdv_core.client._pickers import WaitForP2P
from rdv_core.client._race import Race
from rdv_core.client._sockets import local_port
from rdv_core.events import (
    Candidate,
    CandidateConnected,
    CandidateSkipped,
    Clock,
    DialRetried,
    DialStarted,
    Event,
    HandshakeFailed,
    HandshakeOk,
)
from rdv_core.wire import ACCEPT, DIAL, MAX_LINE, Addr, AddrSpace, ProtocolError, build_header_line

from tests.race_support import LOOP, client, exchange, pair

CANDIDATE = Candidate(1, "127.0.0.1:1", "loopback4", "self")


def conn_pair() -> tuple[DirectConn, socket.socket]:
    """A DirectConn over a real TCP conn on loopback, and the other end."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        other = socket.create_connection(server.getsockname())
        sock, _ = server.accept()
    sock.setblocking(False)
    return DirectConn.of(CANDIDATE, sock, Addr.parse("127.0.0.1:1")), other


async def test_a_line_leaves_what_follows_for_the_stream() -> None:
    conn, other = conn_pair()
    try:
        other.sendall(b"rdv/1 ")
        reading = asyncio.create_task(conn.read_line())
        await asyncio.sleep(0.01)
        assert not reading.done()  # half a line: waits, without spinning on it
        other.sendall(b"DIAL tok\nCONTINUE\napp bytes")
        assert await asyncio.wait_for(reading, 5) == b"rdv/1 DIAL tok"
        assert await conn.read_line() == b"CONTINUE"
        link = await conn.to_link()
        other.sendall(b" and more")
        other.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(link.reader.read(), 5) == b"app bytes and more"
        assert conn.remote == Addr.from_sockaddr(other.getsockname())
        link.close()
    finally:
        other.close()
        conn.close()


async def test_eof_and_overlong_lines() -> None:
    conn, other = conn_pair()
    other.close()
    with pytest.raises(PeerClosed):
        await conn.read_line()
    conn.close()
    assert not conn.alive

    conn, other = conn_pair()
    other.sendall(b"half a line")
    other.close()
    with pytest.raises(ProtocolError, match="EOF inside"):
        await conn.read_line()
    conn.close()

    conn, other = conn_pair()
    try:
        other.sendall(b"x" * (MAX_LINE + 10) + b"\n")
        with pytest.raises(ProtocolError, match="longer than"):
            await asyncio.wait_for(conn.read_line(), 5)
    finally:
        other.close()
        conn.close()


async def test_the_gate_opens_for_trouble_and_skips_after_success() -> None:
    seen: list[Event] = []
    v6 = Candidate(2, "[::1]:1", "loopback6", "self")
    started: list[Candidate] = []

    # Trouble on IPv4: the held IPv6 dial starts in the same callback.
    gate = LoopbackGate(seen.append, Clock())
    gate.hold(v6, lambda: started.append(v6))
    assert not started
    gate.watch(seen.append)(DialRetried(0.0, CANDIDATE, 2, "refused"))
    assert started == [v6]

    # IPv4 connected: the held candidate is skipped right after that event, never dialled.
    gate = LoopbackGate(seen.append, Clock())
    gate.hold(v6, lambda: started.append(v6))
    gate.watch(seen.append)(CandidateConnected(0.0, CANDIDATE))
    assert started == [v6]
    assert isinstance(seen[-2], CandidateConnected)
    assert isinstance(seen[-1], CandidateSkipped) and seen[-1].reason == SKIP_REASON
    gate.hold(v6, lambda: started.append(v6))  # held after the news: decided at once
    assert isinstance(seen[-1], CandidateSkipped) and started == [v6]

    # No news at all: IPv6 is dialled after the stagger.
    gate = LoopbackGate(seen.append, Clock())
    gate.hold(v6, lambda: started.append(v6))
    await asyncio.sleep(LOOPBACK_STAGGER * 2)
    assert started == [v6, v6]

    # The race ends first: skipped, never dialled.
    gate = LoopbackGate(seen.append, Clock())
    gate.hold(v6, lambda: started.append(v6))
    gate.close()
    await asyncio.sleep(LOOPBACK_STAGGER * 2)
    assert started == [v6, v6]
    assert isinstance(seen[-1], CandidateSkipped) and seen[-1].reason == "the race ended first"


async def test_ipv6_loopback_is_dialled_when_ipv4_is_refused() -> None:
    """The peer's 127.0.0.1 candidate is a closed port: ::1 is dialled and wins."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = local_port(probe)
    listeners = {m: open_listeners() for m in (DIAL, ACCEPT)}
    ports = {m: local_port(listeners[m][0]) for m in (DIAL, ACCEPT)}
    events: dict[str, list[Event]] = {DIAL: [], ACCEPT: []}
    ids = itertools.count(1)
    peers = {
        DIAL: [Addr.parse(f"127.0.0.1:{closed}"), Addr.parse(f"[::1]:{ports[ACCEPT]}")],
        # The accepter only listens for the dialer's ::1 conn (its own dial finds nobody).
        ACCEPT: [Addr.parse("[::1]:1")],
    }

    def race(method: str) -> Race:
        return Race(
            method=method,  # type: ignore[arg-type]
            token="tok",
            spaces=AddrSpace.LOOPBACK,
            picker=WaitForP2P(1.0),
            listeners=listeners[method],
            port=ports[method],
            peer_addrs=peers[method],
            relay=None,
            clock=Clock(),
            emit=events[method].append,
            new_id=lambda: next(ids),
        )

    d, a = await asyncio.wait_for(asyncio.gather(race(DIAL).run(), race(ACCEPT).run()), 5)
    try:
        kinds = [(type(e).__name__, e.candidate.space) for e in events[DIAL]]  # type: ignore[attr-defined]
        assert kinds.index(("DialRetried", "loopback4")) < kinds.index(("DialStarted", "loopback6"))
        ok = [e for e in events[DIAL] if isinstance(e, HandshakeOk)]
        assert ok and ok[0].candidate.space == "loopback6" and ok[0].candidate.origin == "self"
        assert not d.is_relay and d.remote.port == ports[ACCEPT]
        assert not any(isinstance(e, CandidateSkipped) for e in events[DIAL])
        assert any(isinstance(e, DialStarted) for e in events[ACCEPT])
    finally:
        d.close()
        a.close()


async def test_every_conn_has_nagle_off(url: str) -> None:
    """Direct and relayed conns, both sides: TCP_NODELAY (asyncio skips our proto-0 sockets)."""
    for spaces in (LOOP, AddrSpace.NONE):
        d, a = await pair(url, client(spaces=spaces), client(spaces=spaces), token=f"nd{spaces}")
        async with d, a:
            assert d.is_relay == a.is_relay == (spaces == AddrSpace.NONE)
            for conn in (d, a):
                sock = conn.writer.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            await exchange(d, a)


def exchanges_for(method: str) -> tuple[list[Event], Exchanges]:
    """The race's line exchange on its own, recording its events."""
    events: list[Event] = []
    exchanges = Exchanges(
        method=method,  # type: ignore[arg-type]
        token="tok",
        header=build_header_line(method, "tok"),
        clock=Clock(),
        emit=events.append,
        fail=lambda text: None,
        on_ok=lambda conn: None,
        on_won=lambda conn: None,
        on_end=lambda conn: None,
        crash=lambda exc: None,
    )
    return events, exchanges


async def test_an_inbound_line_already_here_is_answered_at_once() -> None:
    conn, other = conn_pair()
    try:
        other.sendall(b"rdv/1 DIAL tok\nCONTINUE\n")
        await asyncio.sleep(0.01)
        conn.answer_now(b"rdv/1 ACCEPT tok\n", ACCEPT, "tok")
        assert conn.answered
        assert other.recv(100) == b"rdv/1 ACCEPT tok\n"
        events, exchanges = exchanges_for(ACCEPT)
        exchanges.start(conn, outbound=False)  # already answered: ok at once
        assert [type(e) for e in events] == [HandshakeOk]
        assert await conn.read_line() == b"CONTINUE"  # the command stayed in the socket
        exchanges.cancel_all()
    finally:
        other.close()
        conn.close()

    # A wrong line is not answered: the handshake reports the misdial, the sender gets nothing.
    conn, other = conn_pair()
    try:
        other.sendall(b"rdv/1 ACCEPT tok\n")  # our own method: a stranger echoing us
        await asyncio.sleep(0.01)
        conn.answer_now(b"rdv/1 ACCEPT tok\n", ACCEPT, "tok")
        assert not conn.answered
        events, exchanges = exchanges_for(ACCEPT)
        exchanges.start(conn, outbound=False)  # the early line is checked: a misdial
        assert [(type(e), getattr(e, "reason", None)) for e in events] == [
            (HandshakeFailed, "misdial")
        ]
        assert not conn.alive
        assert other.recv(100) == b""
    finally:
        other.close()
        conn.close()
