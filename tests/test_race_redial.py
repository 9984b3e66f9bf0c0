"""The redial machinery of the race: bursts, fast failures, socket reuse, lost SYNs, and the
picker's wait for a conn that a kernel retransmission brings late.

Real sockets on loopback only. A refused dial is a dial to a loopback port nobody
listens on; an unanswered SYN is a dial to a loopback listener whose accept queue is
full (Linux then drops the SYN, the client stays in ``SYN_SENT``).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from rdv_core.client._budget import BudgetPolicy, SynBudget
from rdv_core.client._connect import SynLost, can_redial, connect, redial_burst
from rdv_core.client._dialer import (
    LOCAL_RETRY_INTERVAL,
    PACE_GROWTH,
    PACE_MAX,
    PACE_START,
    STALL_FACTOR,
    STALL_FLOOR,
    STALL_MAX_RTT,
    redial_pause,
    stall_timeout,
)
from rdv_core.client._pickers import ON_THE_WAY_GRACE, Offers, WaitForP2P
from rdv_core.client._sockets import bound_socket
from rdv_core.tcpinfo import syn_unanswered
from rdv_core.wire import Addr

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="Linux socket semantics")

PUBLIC = Addr.parse("203.0.113.12:4000")
PRIVATE = Addr.parse("10.0.2.2:4000")


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener (bound then released: the kernel resets SYNs)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def full_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback listener with a full accept queue: further SYNs are dropped."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    held: list[socket.socket] = [listener]
    # backlog 0 admits one queued conn; a second fills the SYN-accept path for good.
    for _ in range(2):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        held.append(c)
    time.sleep(0.05)
    try:
        yield port, held
    finally:
        for s in held:
            s.close()


def test_paced_redials_grow_geometrically_and_are_capped() -> None:
    assert redial_pause(PUBLIC, 0) == PACE_START
    assert redial_pause(PUBLIC, 3) == pytest.approx(PACE_START * PACE_GROWTH**3)
    assert redial_pause(PUBLIC, 1000) == PACE_MAX
    # Non-public candidates start slower.
    assert redial_pause(PRIVATE, 0) == LOCAL_RETRY_INTERVAL
    # The first second holds a dozen paced redials, not thousands.
    elapsed, count = 0.0, 0
    while elapsed + redial_pause(PUBLIC, count) < 1.0:
        elapsed += redial_pause(PUBLIC, count)
        count += 1
    assert 10 <= count <= 16


def test_stall_timeout_fits_the_path_to_the_peer() -> None:
    assert stall_timeout(PRIVATE, 0.001, 0) is None
    # A router that refuses us from 0.1 ms away says nothing about the peer behind it:
    # the floor holds for near servers.
    assert stall_timeout(PUBLIC, 0.0001, 0) == STALL_FLOOR
    assert stall_timeout(PUBLIC, STALL_MAX_RTT, 0) == STALL_FLOOR
    assert stall_timeout(PUBLIC, 0.0001, 3) == pytest.approx(8 * STALL_FLOOR)
    # The topology: the peer 20 ms behind an RST router 0.1 ms from us; its
    # SYN-ACK comes about 40 ms after our SYN, long before we would give up.
    assert STALL_FLOOR > 0.2
    # Farther from the server, or without any RTT, the kernel's retransmission of the
    # same SYN is the only one that can finish a handshake the peer may have answered.
    assert stall_timeout(PUBLIC, 2 * STALL_MAX_RTT, 0) is None
    assert stall_timeout(PUBLIC, 0.2, 0) is None
    assert stall_timeout(PUBLIC, None, 0) is None
    assert STALL_FACTOR * STALL_MAX_RTT < STALL_FLOOR


def port_bound_socket() -> socket.socket:
    """A connector as the race makes them: bound to an explicit port (kept on redials)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return bound_socket(socket.AF_INET, port, host="127.0.0.1")


async def test_connect_reports_a_refusal_and_the_socket_dials_again(closed_port: int) -> None:
    sock = port_bound_socket()
    try:
        with pytest.raises(OSError) as info:
            await connect(sock, ("127.0.0.1", closed_port))
        assert info.value.errno == errno.ECONNREFUSED
        if not can_redial(info.value):
            pytest.skip("sockets are not reused on this system")
        local = sock.getsockname()
        # The same socket, still bound to the same port, connects once someone listens.
        listener = socket.create_server(("127.0.0.1", closed_port))
        try:
            await connect(sock, ("127.0.0.1", closed_port))
            conn, peer = listener.accept()
            conn.close()
            assert peer == local
        finally:
            listener.close()
    finally:
        sock.close()


@linux_only
async def test_redial_burst_counts_refusals_and_respects_the_budget(closed_port: int) -> None:
    sock = port_bound_socket()
    local = sock.getsockname()
    budget = SynBudget(BudgetPolicy(per_addr=40, per_attempt=40, burst=25))
    cand = budget.for_addr(Addr.parse(f"127.0.0.1:{closed_port}"))
    try:
        with pytest.raises(OSError) as info:
            await connect(sock, ("127.0.0.1", closed_port))
        assert can_redial(info.value)
        refused, code = redial_burst(sock, ("127.0.0.1", closed_port), 1.0, cand)
        assert (refused, code) == (25, errno.ECONNREFUSED)
        assert cand.sent == cand.booked == budget.booked == 25
        # The burst is spent: no more back-to-back dials in this attempt.
        assert redial_burst(sock, ("127.0.0.1", closed_port), 1.0, cand) == (0, errno.ECONNREFUSED)
        # The socket is still usable afterwards.
        listener = socket.create_server(("127.0.0.1", closed_port))
        try:
            assert cand.reserve()
            await connect(sock, ("127.0.0.1", closed_port))
            cand.settle(0.001)
            assert sock.getsockname() == local
            assert cand.booked == 26
        finally:
            listener.close()
    finally:
        sock.close()


@linux_only
async def test_an_unanswered_syn_is_given_up_after_stall(
    full_listener: tuple[int, list[socket.socket]],
) -> None:
    port, _ = full_listener
    sock = bound_socket(socket.AF_INET, 0, host="127.0.0.1")
    try:
        started = time.monotonic()
        with pytest.raises(SynLost):
            await connect(sock, ("127.0.0.1", port), stall_after=0.05)
        assert 0.04 < time.monotonic() - started < 0.9  # well before the kernel's 1 s
        assert syn_unanswered(sock)
        assert not can_redial(SynLost(errno.ETIMEDOUT, "x"))
    finally:
        sock.close()


@linux_only
async def test_without_stall_a_pending_syn_is_left_to_the_kernel(
    full_listener: tuple[int, list[socket.socket]],
) -> None:
    port, _ = full_listener
    sock = bound_socket(socket.AF_INET, 0, host="127.0.0.1")
    try:
        task = asyncio.create_task(connect(sock, ("127.0.0.1", port)))
        await asyncio.sleep(0.1)
        assert not task.done()
        assert syn_unanswered(sock)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        sock.close()


async def test_a_fresh_or_connected_socket_is_not_waiting_for_an_answer() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    sock = bound_socket(socket.AF_INET, 0, host="127.0.0.1")
    try:
        assert not syn_unanswered(sock)
        await connect(sock, listener.getsockname())
        assert not syn_unanswered(sock)
    finally:
        sock.close()
        listener.close()


async def test_wait_for_p2p_waits_longer_on_far_paths() -> None:
    from rdv_core.client._pickers import WAIT_RTTS, Offers, WaitForP2P

    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    offers.rtt_hint = 0.05
    started = time.monotonic()

    async def pick() -> str | None:
        return await WaitForP2P(0.1).pick(offers)

    task = asyncio.create_task(pick())
    await asyncio.sleep(0.15)
    assert not task.done()  # 0.1 s + 4 x 50 ms = 0.3 s
    offers.add("direct", is_relay=False)
    assert await task == "direct"
    offers.rtt_hint = None
    picked = await WaitForP2P(0.05).pick(offers)
    assert picked == "direct"
    assert WAIT_RTTS * 0.05 + 0.1 > time.monotonic() - started > 0.15


async def test_the_picker_waits_for_a_direct_conn_whose_header_is_on_the_way() -> None:
    # Over lossy paths the TCP conn comes up late (the kernel's retransmission of the same
    # SYN, a second after it): its header lines arrive after WaitForP2P's own deadline.
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    offers.coming()
    loop = asyncio.get_running_loop()

    def header_checked() -> None:
        offers.add("direct", is_relay=False)
        offers.arrived()

    loop.call_later(0.15, header_checked)  # after the 0.1 s deadline, within the grace
    assert await WaitForP2P(0.1).pick(offers) == "direct"


async def test_the_picker_takes_the_relay_once_the_conn_on_the_way_fails() -> None:
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    offers.coming()
    asyncio.get_running_loop().call_later(0.15, offers.arrived)  # its handshake failed
    late = asyncio.get_running_loop().call_later(30, offers.add, "direct", False)
    try:
        assert await WaitForP2P(0.1).pick(offers) == "relay"
    finally:
        late.cancel()
    assert offers.on_the_way == 0


async def test_without_a_conn_on_the_way_the_picker_keeps_its_deadline() -> None:
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    late = asyncio.get_running_loop().call_later(0.15, offers.add, "direct", False)
    try:
        assert await WaitForP2P(0.1).pick(offers) == "relay"
    finally:
        late.cancel()
    assert ON_THE_WAY_GRACE > 0


def _offers_with_one_dial(rtt: float, syn_age: float, *, answered: bool = False) -> Offers[str]:
    """The relay on offer, and one public dial whose SYN left ``syn_age`` seconds ago."""
    offers: Offers[str] = Offers()
    offers.add("relay", is_relay=True)
    offers.rtt_hint = rtt
    budget = SynBudget(clock=lambda: time.monotonic() - syn_age)
    assert budget.for_addr(PUBLIC).reserve()
    if answered:
        budget.for_addr(PUBLIC).settle(syn_age)
    budget.clock = time.monotonic
    offers.lost_syns = budget
    return offers


async def test_far_from_the_server_the_picker_waits_for_a_lost_syns_retransmission() -> None:
    # A SYN unanswered for 0.5 s at 10 ms looks lost; the kernel retransmits it at 1 s,
    # 0.5 s from now, after the picker's deadline (0.2 s + 4 x 10 ms): a conn it brings is
    # taken, within the grace.
    offers = _offers_with_one_dial(0.01, 0.5)
    asyncio.get_running_loop().call_later(0.35, offers.add, "direct", False)
    assert await WaitForP2P(0.2).pick(offers) == "direct"


async def test_near_the_server_too_the_picker_waits_for_a_lost_syns_retransmission() -> None:
    # The dialer keeps its SYNs near the server too (the peer's pre-opening SYN may have
    # anchored our router on it, docs/LAB-NOTES.md section 11): microsecond round trips,
    # so the answer is awaited for ANSWER_FLOOR after the retransmission.
    offers = _offers_with_one_dial(STALL_MAX_RTT / 2, 0.5)
    asyncio.get_running_loop().call_later(0.35, offers.add, "direct", False)
    assert await WaitForP2P(0.2).pick(offers) == "direct"


async def test_without_a_lost_syn_the_picker_keeps_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    for offers in (
        _offers_with_one_dial(0.01, 0.5, answered=True),  # far, but the SYN was answered (refused)
        _offers_with_one_dial(0.01, 1.5),  # retransmitted long ago: its answer is overdue too
    ):
        late = loop.call_later(0.35, offers.add, "direct", False)
        try:
            assert await WaitForP2P(0.2).pick(offers) == "relay"
        finally:
            late.cancel()
