"""Client pieces without a server: pickers, errno classification, origins, errors,
the request bytes against the reference client's, and a race between two peers that
are given each other's addresses directly (no rendezvous)."""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import socket

import pytest

from rdv_core.client._candidates import infer_origins, space_name
from rdv_core.client._client import Client, open_listeners
from rdv_core.client._dialer import LOCAL_RETRY_INTERVAL, PACE_START, redial_pause
from rdv_core.client._failures import classify
from rdv_core.client._link import Link
from rdv_core.client._pickers import Offers, PickFirst, WaitConstant, WaitForP2P
from rdv_core.client._race import Race
from rdv_core.client._sockets import local_port
from rdv_core.errors import (
    NoConnectionError,
    RdvError,
    RdvProtocolError,
    RdvTimeoutError,
    ServerRejectedError,
)
from rdv_core.events import (
    Clock,
    Event,
    HandshakeOk,
    Picked,
    read_jsonl,
    write_jsonl,
)
from rdv_core.wire import ACCEPT, DIAL, Addr, AddrSpace, Method, build_request, parse_server_url

from tests.go_vectors import SESSION_REQUESTS, UNUSUAL_TOKENS

# ----- pickers


async def test_wait_for_p2p_takes_the_first_direct_offer() -> None:
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    # Bound first: inside create_task() mypy would solve pick's T as str | None.
    picking = WaitForP2P(5).pick(offers)
    task = asyncio.create_task(picking)
    await asyncio.sleep(0.01)
    assert not task.done()
    offers.add("direct-1", is_relay=False)
    offers.add("direct-2", is_relay=False)
    assert await asyncio.wait_for(task, 1) == "direct-1"


async def test_wait_for_p2p_falls_back_to_the_relay() -> None:
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await WaitForP2P(0.1).pick(offers) == "relay"
    assert 0.09 <= loop.time() - start < 0.5


async def test_wait_for_p2p_does_not_wait_for_nothing() -> None:
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    offers.set_exhausted()
    picking = WaitForP2P(10).pick(offers)
    assert await asyncio.wait_for(picking, 1) == "relay"


async def test_wait_for_p2p_without_relay_gives_up() -> None:
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    offers.withdraw("relay")
    assert await WaitForP2P(0.05).pick(offers) is None


async def test_pick_first_takes_whatever_comes_first() -> None:
    offers: Offers[str] = Offers()
    picking = PickFirst().pick(offers)
    task = asyncio.create_task(picking)
    await asyncio.sleep(0.01)
    offers.add("direct", is_relay=False)
    offers.add("relay", is_relay=True)
    assert await task == "direct"
    offers2: Offers[str] = Offers()
    offers2.add("relay", is_relay=True)
    offers2.add("direct", is_relay=False)
    assert await PickFirst().pick(offers2) == "relay"


async def test_wait_constant_always_waits_then_prefers_direct() -> None:
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    offers.add("direct", is_relay=False)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await WaitConstant(0.1).pick(offers) == "direct"
    assert loop.time() - start >= 0.1
    only_relay: Offers[str] = Offers()
    only_relay.add("relay", is_relay=True)
    assert await WaitConstant(0).pick(only_relay) == "relay"


def test_picker_names_and_validation() -> None:
    assert WaitForP2P(1.0).describe() == "wait-for-p2p 1s"
    assert WaitConstant(0.5).describe() == "wait-constant 0.5s"
    assert PickFirst().describe() == "pick-first"
    with pytest.raises(ValueError):
        WaitForP2P(-1)
    with pytest.raises(ValueError):
        WaitConstant(-0.1)
    assert isinstance(Client().picker, WaitForP2P) and Client().picker.seconds == 1.0  # type: ignore[attr-defined]


# ----- classification, origins, spaces


@pytest.mark.parametrize(
    ("exc", "reason", "code"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused", errno.ECONNREFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "reset", errno.ECONNRESET),
        (OSError(errno.EHOSTUNREACH, "no route"), "unreachable", errno.EHOSTUNREACH),
        (OSError(errno.ENETUNREACH, "unreachable"), "unreachable", errno.ENETUNREACH),
        (OSError(errno.EADDRNOTAVAIL, "in use"), "unreachable", errno.EADDRNOTAVAIL),
        (TimeoutError(errno.ETIMEDOUT, "timed out"), "timeout", errno.ETIMEDOUT),
        (TimeoutError(), "timeout", None),
        (asyncio.CancelledError(), "cancelled", None),
        (EOFError(), "eof", None),
        (OSError(errno.EMFILE, "too many files"), "error", errno.EMFILE),
    ],
)
def test_classify(exc: BaseException, reason: str, code: int | None) -> None:
    assert classify(exc) == (reason, code)


def test_classify_real_refused_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as sock, pytest.raises(OSError) as info:
        sock.connect(("127.0.0.1", port))
    assert classify(info.value) == ("refused", errno.ECONNREFUSED)


def test_infer_origins() -> None:
    # Behind a NAT that changed the port: the public address is the observed one.
    addrs = [Addr.parse(a) for a in ("10.0.1.2:40001", "203.0.113.11:61000", "[fd00::2]:40001")]
    origins = infer_origins(addrs)
    assert origins[addrs[1]] == "observed"
    assert origins[addrs[0]] == origins[addrs[2]] == "self"
    # Same port everywhere: indistinguishable, reported as self.
    same = [Addr.parse(a) for a in ("10.0.1.2:4000", "203.0.113.11:4000")]
    assert set(infer_origins(same).values()) == {"self"}
    assert infer_origins([]) == {}


def test_fast_redials_only_through_nats() -> None:
    """Public addresses (behind a NAT that resets early SYNs) are redialled sooner."""
    for public in ("203.0.113.12:4000", "[2001:db8::1]:4000"):
        assert redial_pause(Addr.parse(public), 0) == PACE_START
    for local in ("192.168.1.5:4000", "10.0.0.1:1", "[fd00::2]:1", "127.0.0.1:1", "[fe80::1]:1"):
        assert redial_pause(Addr.parse(local), 0) == LOCAL_RETRY_INTERVAL


def test_space_names() -> None:
    assert space_name(Addr.parse("127.0.0.1:1")) == "loopback4"
    assert space_name(Addr.parse("[::1]:1")) == "loopback6"
    assert space_name(Addr.parse("0.0.0.0:1")) == "invalid"


# ----- errors


def test_error_hierarchy() -> None:
    rejected = ServerRejectedError(409, "Conflict", "replaced by another conn" + "x" * 2000)
    assert isinstance(rejected, ConnectionError) and isinstance(rejected, RdvError)
    assert len(rejected.body) == 1024
    assert str(ServerRejectedError(503, "Service Unavailable", "rdv is closed\n")) == (
        "server rejected: 503 Service Unavailable: rdv is closed"
    )
    assert isinstance(RdvProtocolError("x"), ConnectionError)
    assert isinstance(RdvTimeoutError("x", "racing"), TimeoutError)
    none = NoConnectionError("no conn", ("127.0.0.1:1: refused", "relay: eof"))
    assert isinstance(none, ConnectionError)
    assert "refused" in str(none) and none.causes[1] == "relay: eof"


# ----- the request, byte for byte like the reference client's


@pytest.mark.parametrize("vector", SESSION_REQUESTS, ids=lambda v: f"{v[0]}-{v[1]}")
def test_request_bytes_match_the_reference(vector: tuple[str, str, bytes, tuple[str, ...]]) -> None:
    method, token, expected, self_addrs = vector
    ours = build_request(
        method,
        parse_server_url("http://127.0.0.1:18080"),
        token,
        [Addr.parse(a) for a in self_addrs],
        user_agent="Go-http-client/1.1",
    )
    assert ours == expected


def test_request_bytes_for_url_safe_tokens_match_the_reference() -> None:
    vector = UNUSUAL_TOKENS[0]
    ours = build_request(
        DIAL,
        parse_server_url("http://127.0.0.1:18090"),
        vector.token,
        [Addr.parse(a) for a in vector.self_addrs],
        user_agent="Go-http-client/1.1",
    )
    assert ours == vector.request


async def test_client_sends_the_reference_request_shape() -> None:
    """Capture what Client.dial really sends (a listener that hangs up after the head)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    captured: list[bytes] = []

    async def capture() -> None:
        conn, _ = await loop.sock_accept(listener)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await loop.sock_recv(conn, 4096)
            captured.append(data)

    task = asyncio.create_task(capture())
    port = listener.getsockname()[1]
    events: list[Event] = []
    try:
        with pytest.raises(RdvProtocolError):
            await Client(
                spaces=AddrSpace.LOOPBACK4,
                headers=[("Authorization", "Bearer x")],
                on_event=events.append,
            ).dial(f"http://127.0.0.1:{port}/rdv", "simple-token")
        await task
    finally:
        listener.close()
    (request,) = captured
    ours_port = next(e.port for e in events if hasattr(e, "port"))
    reference = SESSION_REQUESTS[1][2]  # DIAL from a reference client, same header order
    expected = (
        reference.replace(b"/tok-cap1", b"/rdv/simple-token")
        .replace(b"127.0.0.1:18080", f"127.0.0.1:{port}".encode())
        .replace(b"Go-http-client/1.1", b"rdv-python/0.1")
        .replace(
            b"192.0.2.2:36481, [fd00::2]:36481",
            f"127.0.0.1:{ours_port}".encode(),
        )
        # Extra headers go where Go's sorted header writer puts them.
        .replace(b"Connection:", b"Authorization: Bearer x\r\nConnection:")
    )
    assert request == expected


# ----- the race without a server: two peers given each other's addresses


async def race_pair() -> tuple[list[Event], list[Event], Link, Link]:
    clock = Clock()
    ids = itertools.count(1)
    listeners = {m: open_listeners() for m in (DIAL, ACCEPT)}
    ports = {m: local_port(listeners[m][0]) for m in (DIAL, ACCEPT)}
    events: dict[str, list[Event]] = {DIAL: [], ACCEPT: []}

    def race(method: Method) -> Race:
        other = ACCEPT if method == DIAL else DIAL
        return Race(
            method=method,
            token="tok",
            spaces=AddrSpace.LOOPBACK,
            picker=WaitForP2P(1.0),
            listeners=listeners[method],
            port=ports[method],
            peer_addrs=[
                Addr.parse(f"127.0.0.1:{ports[other]}"),
                Addr.parse(f"[::1]:{ports[other]}"),
            ],
            relay=None,
            clock=clock,
            emit=events[method].append,
            new_id=lambda: next(ids),
        )

    d, a = await asyncio.wait_for(asyncio.gather(race(DIAL).run(), race(ACCEPT).run()), 5)
    return events[DIAL], events[ACCEPT], d, a


async def test_race_without_server_goes_direct() -> None:
    d_events, a_events, d, a = await race_pair()
    assert not d.is_relay and not a.is_relay
    assert d.local == a.remote and d.remote == a.local
    d.writer.write(b"ping\n")
    assert await a.reader.readline() == b"ping\n"
    d.close()
    a.close()
    assert any(isinstance(e, Picked) for e in d_events)
    assert any(isinstance(e, HandshakeOk) for e in a_events)
    # The events survive a JSONL round trip.
    buf = io.StringIO()
    write_jsonl(d_events, buf)
    buf.seek(0)
    assert list(read_jsonl(buf)) == d_events


async def test_race_alone_says_why_it_failed() -> None:
    """A dialer whose only candidate refuses: redials, then no conn, with the cause."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    listeners = open_listeners()
    events: list[Event] = []
    ids = itertools.count(1)
    race = Race(
        method=DIAL,
        token="tok",
        spaces=AddrSpace.LOOPBACK,
        picker=WaitForP2P(0.3),
        listeners=listeners,
        port=local_port(listeners[0]),
        peer_addrs=[Addr.parse(f"127.0.0.1:{closed_port}")],
        relay=None,
        clock=Clock(),
        emit=events.append,
        new_id=lambda: next(ids),
    )
    with pytest.raises(NoConnectionError) as info:
        await race.run()
    assert "refused" in str(info.value)
    assert all(s.fileno() == -1 for s in listeners)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "DialStarted" and "DialRetried" in kinds
    assert kinds[-1] == "CandidateFailed"
    assert events[-1].reason == "cancelled"  # type: ignore[attr-defined]


@pytest.mark.parametrize("timeout", [-1.0, float("nan")])
def test_a_negative_timeout_is_refused_at_once(timeout: float) -> None:
    # Before, every attempt failed with "timed out after -1s while waiting for the peer".
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        Client(timeout=timeout)
    assert Client(timeout=0).timeout == 0 and Client(timeout=None).timeout is None
