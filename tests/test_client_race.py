"""The client against the real rdv server, on loopback: the race, pickers, TLS.

Every test starts a real :class:`RdvServer` with its native front on 127.0.0.1 and
real clients restricted to the loopback address spaces (tests/race_support.py).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import ssl
import subprocess
from pathlib import Path

import pytest

from rdv_core.client._client import Client
from rdv_core.client._loopback import SKIP_REASON as LOOPBACK_SKIP
from rdv_core.client._pickers import PickFirst, WaitConstant, WaitForP2P
from rdv_core.client._race_dials import ACCEPTED_REASON
from rdv_core.errors import ServerConnectError
from rdv_core.events import (
    CandidateConnected,
    CandidateFailed,
    CandidateSkipped,
    DialRetried,
    DialStarted,
    Discarded,
    Event,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    InboundRejected,
    Picked,
    RelayReady,
    SelfAddrsGathered,
    ServerConnected,
    ServerResponded,
)
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.wire import AddrSpace

from tests.race_support import LOOP, client, exchange, of, pair

# ----- p2p and relay


async def test_accepter_does_not_dial_the_conn_it_accepted(url: str) -> None:
    """One process, one host: the dialer's loopback conn (its 101 comes first,
    docs/PROTOCOL.md section 4) is queued on the accepter's listener when the accepter's
    race starts. The accepter takes it before dialling and skips that candidate with
    the reason, instead of a dial that fails with EADDRNOTAVAIL (docs/PROTOCOL.md 11)."""
    for round_ in range(3):
        d_events: list[Event] = []
        a_events: list[Event] = []
        d, a = await pair(url, client(d_events), client(a_events), f"acc{round_}", True)
        async with d, a:
            assert not d.is_relay and not a.is_relay
        assert not of(a_events, DialStarted), of(a_events, DialStarted)
        (skip4,) = [e for e in of(a_events, CandidateSkipped) if e.candidate.space == "loopback4"]
        assert skip4.reason == ACCEPTED_REASON
        assert skip4.candidate.addr == str(a.remote_addr)  # the accepted conn's 4-tuple
        (skip6,) = [e for e in of(a_events, CandidateSkipped) if e.candidate.space == "loopback6"]
        assert skip6.reason == LOOPBACK_SKIP
        kinds = [type(e) for e in a_events]
        assert kinds.index(InboundAccepted) < a_events.index(skip4)


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
    # EADDRNOTAVAIL (the peer's SYN already reached our listener) is never a failure, and
    # ::1 is not dialled once 127.0.0.1 reached the peer (client/_loopback.py).
    for events in (d_events, a_events):
        failed = [e for e in of(events, CandidateFailed) if e.reason != "cancelled"]
        assert not failed, failed
        for skipped in of(events, CandidateSkipped):
            if skipped.candidate.space == "loopback6":
                assert skipped.reason == LOOPBACK_SKIP
            else:
                assert "EADDRNOTAVAIL" in skipped.reason
        v6 = [e for e in of(events, DialStarted) if e.candidate.space == "loopback6"]
        assert not v6, v6


def _ends_of_relay(events: list[Event]) -> list[str]:
    """The event types that closed the relay candidate's story, in order."""
    relay = of(events, RelayReady)[0].candidate
    ends = (Discarded, CandidateFailed, Picked)
    return [type(e).__name__ for e in events if isinstance(e, ends) and e.candidate == relay]


async def test_the_relay_candidate_always_ends_with_an_event(url: str) -> None:
    # A direct conn wins; on both sides the relay candidate ends with Discarded, also on
    # the accepter, whose relay read is cancelled when CONTINUE arrives directly first.
    for i in range(6):
        d_events: list[Event] = []
        a_events: list[Event] = []
        d, a = await pair(url, client(d_events), client(a_events), token=f"ends-{i}")
        async with d, a:
            assert not d.is_relay
        assert _ends_of_relay(d_events) == ["Discarded"]
        assert _ends_of_relay(a_events) == ["Discarded"]


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
    assert len(failed) == 1 and "refused dial" in failed[0].detail
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
