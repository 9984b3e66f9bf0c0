"""The redial machinery of the race: bursts, fast failures, socket reuse, lost SYNs.

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

from rdv_core.client._dialer import (
    BURST_MAX_DIALS,
    BURST_WINDOW,
    LOCAL_RETRY_INTERVAL,
    RETRY_INTERVAL,
    STALL_FACTOR,
    STALL_FLOOR,
    SynLost,
    can_redial,
    connect,
    redial_burst,
    redial_pause,
    stall_timeout,
)
from rdv_core.client._sockets import bound_socket
from rdv_core.client._tcpinfo import syn_unanswered
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


def test_redial_pause_bursts_only_public_candidates_early() -> None:
    assert redial_pause(PUBLIC, 1, 0.0, 0.00003) == 0.0
    assert redial_pause(PUBLIC, BURST_MAX_DIALS - 1, BURST_WINDOW - 0.01, 0.0) == 0.0
    # After the window or the dial cap: the slow cadence, minus what the dial took.
    assert redial_pause(PUBLIC, 10, BURST_WINDOW, 0.03) == pytest.approx(RETRY_INTERVAL - 0.03)
    assert redial_pause(PUBLIC, BURST_MAX_DIALS, 0.1, 0.0) == RETRY_INTERVAL
    assert redial_pause(PUBLIC, 10, 5.0, 1.0) == 0.0
    # Non-public candidates never burst.
    assert redial_pause(PRIVATE, 1, 0.0, 0.0) == LOCAL_RETRY_INTERVAL


def test_stall_timeout_scales_with_rtt_and_backs_off() -> None:
    assert stall_timeout(PRIVATE, 0.001, 0) is None
    assert stall_timeout(PUBLIC, None, 0) is None
    assert stall_timeout(PUBLIC, 0.00003, 0) == STALL_FLOOR
    assert stall_timeout(PUBLIC, 0.05, 0) == pytest.approx(STALL_FACTOR * 0.05)
    assert stall_timeout(PUBLIC, 0.05, 3) == pytest.approx(8 * STALL_FACTOR * 0.05)


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
async def test_redial_burst_counts_refusals_and_respects_its_caps(closed_port: int) -> None:
    sock = port_bound_socket()
    local = sock.getsockname()
    try:
        with pytest.raises(OSError) as info:
            await connect(sock, ("127.0.0.1", closed_port))
        assert can_redial(info.value)
        assert redial_burst(sock, ("127.0.0.1", closed_port), 1.0, 25) == 25
        started = time.monotonic()
        refused = redial_burst(sock, ("127.0.0.1", closed_port), 0.02, 10**9)
        assert 0 < refused < 10**9
        assert time.monotonic() - started < 0.5
        # The socket is still usable afterwards.
        listener = socket.create_server(("127.0.0.1", closed_port))
        try:
            assert redial_burst(sock, ("127.0.0.1", closed_port), 1.0, 25) == 0
            await connect(sock, ("127.0.0.1", closed_port))
            assert sock.getsockname() == local
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
