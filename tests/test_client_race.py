"""The client against the real rdv server, on loopback: the race, pickers, errors, leaks.

Every test starts a real :class:`RdvServer` with its native front on 127.0.0.1 and
real clients restricted to the loopback address spaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rdv_core.client._client import Client
from rdv_core.client._conn import Conn
from rdv_core.client._pickers import Picker, PickFirst, WaitConstant, WaitForP2P
from rdv_core.errors import (
    NoConnectionError,
    RdvError,
    RdvProtocolError,
    RdvTimeoutError,
    ServerConnectError,
    ServerRejectedError,
)
from rdv_core.events import (
    AttemptFailed,
    CandidateConnected,
    CandidateFailed,
    CandidateSkipped,
    DialRetried,
    Discarded,
    Event,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    InboundRejected,
    ObservedAddrWarning,
    Picked,
    RelayReady,
    SelfAddrsGathered,
    ServerConnected,
    ServerRejected,
    ServerResponded,
)
from rdv_core.server._core import PairHandler, PeerInfo, RdvServer, Reject
from rdv_core.server._native import start_native
from rdv_core.wire import AddrSpace

LOOP = AddrSpace.LOOPBACK4 | AddrSpace.LOOPBACK6


def client(
    events: list[Event] | None = None,
    spaces: AddrSpace = LOOP,
    picker: Picker | None = None,
    timeout: float | None = 10.0,
    **kwargs: Any,
) -> Client:
    return Client(
        spaces=spaces,
        picker=picker,
        timeout=timeout,
        on_event=events.append if events is not None else None,
        **kwargs,
    )


async def pair(
    url: str, dialer: Client, accepter: Client, token: str = "tok", accept_first: bool = False
) -> tuple[Conn, Conn]:
    """Dial and accept concurrently; the second arrives 50 ms after the first."""

    async def later(make: Callable[[], Any]) -> Conn:
        await asyncio.sleep(0.05)
        conn: Conn = await make()
        return conn

    if accept_first:
        a, d = await asyncio.gather(
            accepter.accept(url, token), later(lambda: dialer.dial(url, token))
        )
    else:
        d, a = await asyncio.gather(
            dialer.dial(url, token), later(lambda: accepter.accept(url, token))
        )
    return d, a


async def exchange(d: Conn, a: Conn) -> None:
    """Application bytes flow both ways, starting right after CONTINUE."""
    d.writer.write(b"hello from the dialer\n")
    a.writer.write(b"hello from the accepter\n")
    assert await asyncio.wait_for(a.reader.readline(), 5) == b"hello from the dialer\n"
    assert await asyncio.wait_for(d.reader.readline(), 5) == b"hello from the accepter\n"


def of(events: list[Event], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


# ----- p2p and relay


async def test_p2p_pick_with_default_picker(url: str) -> None:
    d_events: list[Event] = []
    a_events: list[Event] = []
    d, a = await pair(url, client(d_events), client(a_events))
    async with d, a:
        assert not d.is_relay and not a.is_relay
        # Both ends see the same TCP conn.
        assert d.remote_addr == a.local_addr and a.remote_addr == d.local_addr
        await exchange(d, a)
        assert d.events is not a.events and d.events == d_events
    picked = of(d_events, Picked)
    assert len(picked) == 1 and not picked[0].is_relay
    # The dialer picked well before the 1 s relay fallback.
    assert picked[0].elapsed_s < 0.9
    assert of(d_events, HandshakeOk) and of(a_events, HandshakeOk)
    # Event order for the dialer: server first, then the race, then the pick.
    kinds = [type(e) for e in d_events]
    assert kinds.index(ServerConnected) < kinds.index(ServerResponded) < kinds.index(RelayReady)
    assert kinds.index(HandshakeOk) < kinds.index(Picked)
    ts = [e.t for e in d_events]
    assert ts == sorted(ts)
    # Candidate ids are unique per attempt.
    ids = {e.candidate.id for e in d_events if hasattr(e, "candidate")}
    cands = {e.candidate for e in d_events if hasattr(e, "candidate")}
    assert len(ids) == len(cands)
    # Meta: what the rendezvous told each side.
    assert d.meta.method == "DIAL" and a.meta.method == "ACCEPT"
    assert d.meta.observed_addr is not None and d.meta.observed_addr.port == d.local_addr.port
    assert a.local_addr.port in {p.port for p in d.meta.peer_addrs}
    assert all(s.space in LOOP for s in d.meta.self_addrs)
    # EADDRNOTAVAIL (the peer's SYN already reached our listener) is never a failure.
    for events in (d_events, a_events):
        failed = [e for e in of(events, CandidateFailed) if e.reason != "cancelled"]
        assert not failed, failed
        for skipped in of(events, CandidateSkipped):
            assert "EADDRNOTAVAIL" in skipped.reason


async def test_p2p_either_arrival_order(url: str) -> None:
    for accept_first in (False, True):
        d, a = await pair(
            url, client(), client(), token=f"order-{accept_first}", accept_first=accept_first
        )
        async with d, a:
            assert not d.is_relay
            await exchange(d, a)


async def test_forced_relay_with_spaces_none(url: str) -> None:
    d_events: list[Event] = []
    d, a = await pair(url, client(d_events, spaces=AddrSpace.NONE), client(spaces=AddrSpace.NONE))
    async with d, a:
        assert d.is_relay and a.is_relay
        await exchange(d, a)
        assert d.meta.self_addrs == ()
    # Nothing direct can happen, so the relay is taken at once, not after the 1 s penalty.
    assert of(d_events, Picked)[0].elapsed_s < 0.5
    assert not of(d_events, CandidateConnected)


async def test_relay_half_close_ends_the_pair(url: str) -> None:
    d, a = await pair(url, client(spaces=AddrSpace.NONE), client(spaces=AddrSpace.NONE))
    async with d, a:
        d.writer.write(b"last words")
        d.writer.write_eof()
        assert await asyncio.wait_for(a.reader.read(), 5) == b"last words"


async def test_refused_dials_are_retried_until_the_picker_ends(url: str) -> None:
    # The accepter has no listener (spaces none), so the dialer's dials to its
    # observed address are refused: redialled (every 100 ms for a loopback
    # address), then the relay.
    d_events: list[Event] = []
    d, a = await pair(url, client(d_events, picker=WaitForP2P(0.5)), client(spaces=AddrSpace.NONE))
    async with d, a:
        assert d.is_relay and a.is_relay
        await exchange(d, a)
    retries = of(d_events, DialRetried)
    assert 3 <= len(retries) <= 7, retries
    assert all(r.reason == "refused" and r.errno == errno.ECONNREFUSED for r in retries)
    assert [r.attempt for r in retries] == list(range(2, 2 + len(retries)))
    gaps = [b.t - a.t for a, b in itertools.pairwise(retries)]
    assert all(0.07 < g < 0.3 for g in gaps), gaps
    failed = [e for e in of(d_events, CandidateFailed) if e.reason == "cancelled"]
    assert len(failed) == 1 and "refused dial(s)" in failed[0].detail
    assert 0.5 <= of(d_events, Picked)[0].elapsed_s - of(d_events, ServerResponded)[0].t < 0.8


# ----- pickers


async def test_pick_first_takes_the_relay_that_is_ready_first(url: str) -> None:
    d_events: list[Event] = []
    d, a = await pair(url, client(d_events, picker=PickFirst()), client())
    async with d, a:
        assert d.is_relay and a.is_relay
        await exchange(d, a)
    assert of(d_events, Picked)[0].candidate.origin == "relay"


async def test_wait_constant_waits_then_prefers_p2p(url: str) -> None:
    d_events: list[Event] = []
    d, a = await pair(url, client(d_events, picker=WaitConstant(0.3)), client())
    async with d, a:
        assert not d.is_relay and not a.is_relay
        await exchange(d, a)
    responded = of(d_events, ServerResponded)[0].t
    first_ok = of(d_events, HandshakeOk)[0].t
    picked = of(d_events, Picked)[0]
    assert first_ok - responded < 0.25  # p2p was ready early ...
    assert picked.elapsed_s - responded >= 0.3  # ... but the picker waited its full time


async def test_wait_for_p2p_is_faster_than_wait_constant(url: str) -> None:
    fast: list[Event] = []
    d, a = await pair(url, client(fast, picker=WaitForP2P(2.0)), client())
    async with d, a:
        assert not d.is_relay
    assert of(fast, Picked)[0].elapsed_s < 1.0


async def test_inbound_from_a_disabled_space_is_rejected(url: str) -> None:
    # The dialer allows only loopback6, but its observed address is 127.0.0.1: the
    # accepter dials it, and the dialer closes that inbound conn at once.
    d_events: list[Event] = []
    d, a = await pair(
        url, client(d_events, spaces=AddrSpace.LOOPBACK6, picker=WaitConstant(0.3)), client()
    )
    async with d, a:
        assert not d.is_relay
        assert not d.remote_addr.is_ipv4
        await exchange(d, a)
    rejected = of(d_events, InboundRejected)
    assert rejected and all(r.candidate.space == "loopback4" for r in rejected)
    assert all(not e.candidate.addr.startswith("127.") for e in of(d_events, HandshakeOk))


async def test_a_stranger_on_the_listener_is_a_misdial(url: str) -> None:
    """A third party connects to the dialer's listener with a wrong header line."""
    d_events: list[Event] = []
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        d_events.append(event)
        if isinstance(event, SelfAddrsGathered) and not port.done():
            port.set_result(event.port)

    dialer = Client(spaces=LOOP, picker=WaitConstant(0.3), timeout=10, on_event=on_event)
    dial = asyncio.create_task(dialer.dial(url, "tok"))
    stranger_reader, stranger = await asyncio.open_connection("127.0.0.1", await port)
    stranger.write(b"rdv/1 ACCEPT not-the-token\n")
    a = await client().accept(url, "tok")
    d = await dial
    async with d, a:
        assert not d.is_relay
        assert d.remote_addr == a.local_addr
        await exchange(d, a)
    # The stranger got nothing from us (not even our header line): just the close.
    assert await asyncio.wait_for(stranger_reader.read(), 5) == b""
    stranger.close()
    misdials = [e for e in of(d_events, HandshakeFailed) if e.reason == "misdial"]
    assert len(misdials) == 1
    assert misdials[0].candidate.origin == "inbound"
    assert misdials[0].candidate.addr == "127.0.0.1:{}".format(
        stranger.get_extra_info("sockname")[1]
    )
    assert "token" in misdials[0].detail
    assert any(e.candidate == misdials[0].candidate for e in of(d_events, InboundAccepted))


async def test_a_stranger_echoing_our_method_is_a_misdial(url: str) -> None:
    """The right token with the wrong method (our own) is still a misdial."""
    d_events: list[Event] = []
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        d_events.append(event)
        if isinstance(event, SelfAddrsGathered) and not port.done():
            port.set_result(event.port)

    dialer = Client(spaces=LOOP, picker=WaitConstant(0.2), timeout=10, on_event=on_event)
    dial = asyncio.create_task(dialer.dial(url, "tok"))
    _, stranger = await asyncio.open_connection("127.0.0.1", await port)
    stranger.write(b"rdv/1 DIAL tok\n")
    a = await client().accept(url, "tok")
    d = await dial
    async with d, a:
        assert not d.is_relay
    stranger.close()
    assert [e.reason for e in of(d_events, HandshakeFailed)].count("misdial") == 1


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


# ----- leaks


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(fds: int, tasks: int) -> tuple[int, int]:
    """Wait (up to 2 s) for fd and task counts to come back down; return the last counts."""
    now = (fd_count(), len(asyncio.all_tasks()))
    for _ in range(100):
        now = (fd_count(), len(asyncio.all_tasks()))
        if now[0] <= fds and now[1] <= tasks:
            break
        await asyncio.sleep(0.02)
    return now


async def test_nothing_leaks_on_success_failure_or_cancellation(url: str) -> None:
    # Warm up (lazy imports, the loop's self-pipe, the resolver).
    d, a = await pair(url, client(), client(), token="warm")
    await d.close()
    await a.close()
    fds, tasks = await settled(fd_count(), len(asyncio.all_tasks()))

    # Success, p2p and relay: close the conns, everything goes.
    for spaces in (LOOP, AddrSpace.NONE):
        d, a = await pair(url, client(spaces=spaces), client(spaces=spaces), token=f"ok{spaces}")
        await d.close()
        await a.close()
        assert await settled(fds, tasks) == (fds, tasks)

    # Failure: timeout in the lobby.
    with pytest.raises(RdvTimeoutError):
        await client(timeout=0.1).dial(url, "alone")
    assert await settled(fds, tasks) == (fds, tasks)

    # Cancellation in the middle of the race: both sides hold direct conns and dials.
    d_events: list[Event] = []
    handshaken = asyncio.Event()

    def on_event(event: Event) -> None:
        d_events.append(event)
        if isinstance(event, HandshakeOk):
            handshaken.set()

    dialer = Client(spaces=LOOP, picker=WaitConstant(5), timeout=10, on_event=on_event)
    dial = asyncio.create_task(dialer.dial(url, "cancel"))
    accept = asyncio.create_task(client().accept(url, "cancel"))
    await asyncio.wait_for(handshaken.wait(), 5)
    assert fd_count() > fds
    dial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dial
    # The accepter sees the relay close and no CONTINUE: it fails, cleanly.
    with pytest.raises(NoConnectionError):
        await accept
    assert await settled(fds, tasks) == (fds, tasks)
    assert of(d_events, AttemptFailed)[-1].reason == "cancelled"

    # Cancellation while waiting in the lobby.
    lobby = asyncio.create_task(client().accept(url, "lobby"))
    await asyncio.sleep(0.1)
    lobby.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lobby
    assert await settled(fds, tasks) == (fds, tasks)


async def test_many_attempts_in_a_row(url: str) -> None:
    for i in range(10):
        d, a = await pair(url, client(), client(), token=f"row-{i}")
        async with d, a:
            assert not d.is_relay
            await exchange(d, a)


# ----- TLS


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_server_p2p_and_relay(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0, ssl=server_context, prefix="/rdv")
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        assert front.url.startswith("https://")
        for spaces in (LOOP, AddrSpace.NONE):
            events: list[Event] = []
            d, a = await pair(
                front.url,
                client(events, spaces=spaces, ssl_context=trust),
                client(spaces=spaces, ssl_context=trust),
                token=f"tls-{spaces}",
            )
            async with d, a:
                assert d.is_relay == (spaces == AddrSpace.NONE)
                await exchange(d, a)
            connected = of(events, ServerConnected)[0]
            assert (
                connected.tls and connected.tls_version and connected.tls_version.startswith("TLS")
            )
        # Without trusting the certificate: a clear error, no lobby wait.
        with pytest.raises(ServerConnectError, match="TLS"):
            await client().dial(front.url, "untrusted")
    finally:
        await server.close()
        await front.close()


async def test_cancelling_at_any_moment_leaks_nothing(url: str) -> None:
    """Cancel both peers after 0..20 ms: in the server connect, the lobby, the race."""
    d, a = await pair(url, client(), client(), token="warm-cancel")
    await d.close()
    await a.close()
    fds, tasks = await settled(fd_count(), len(asyncio.all_tasks()))
    for i, delay in enumerate((0, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.006, 0.01, 0.02)):
        dial = asyncio.create_task(client(picker=WaitConstant(0.05)).dial(url, f"c{i}"))
        accept = asyncio.create_task(client().accept(url, f"c{i}"))
        await asyncio.sleep(delay)
        dial.cancel()
        accept.cancel()
        for task in (dial, accept):
            with contextlib.suppress(asyncio.CancelledError, RdvError):
                conn = await task
                await conn.close()
        assert await settled(fds, tasks) == (fds, tasks), f"leak after cancelling at {delay}s"


async def test_server_gone_after_the_101_still_goes_direct() -> None:
    """The relay dies before the pick: both peers still meet on their direct conn."""
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0)
    d_events: list[Event] = []
    a_events: list[Event] = []
    handshaken = asyncio.Event()

    def on_event(event: Event) -> None:
        d_events.append(event)
        if isinstance(event, HandshakeOk):
            handshaken.set()

    dialer = Client(spaces=LOOP, picker=WaitConstant(0.4), timeout=10, on_event=on_event)
    dial = asyncio.create_task(dialer.dial(front.url, "tok"))
    accept = asyncio.create_task(client(a_events).accept(front.url, "tok"))
    try:
        await asyncio.wait_for(handshaken.wait(), 5)
        await server.close()
        await front.close()
        d, a = await dial, await accept
    finally:
        await server.close()
        await front.close()
    async with d, a:
        assert not d.is_relay and not a.is_relay
        await exchange(d, a)
    relay_failed = [e for e in of(d_events, CandidateFailed) if e.candidate.origin == "relay"]
    assert relay_failed and relay_failed[0].reason in ("eof", "reset")
    assert any(
        isinstance(e, Discarded | CandidateFailed) and e.candidate.origin == "relay"
        for e in a_events
    )
