"""The kernel's "how long has the peer left us unanswered" on real loopback sockets
(``rdv_core.tcpinfo.tcp_unanswered``, the silence watch's one input:
docs/PROTOCOL.md section 16.10).

A live peer that stops reading (a receiver piped into a pager) closes its window and
answers every zero-window probe: that is no silence, however long it lasts. This is also
why the watch is not ``TCP_USER_TIMEOUT``: Linux ends such a conn after the timeout.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from rdv_core.tcpinfo import tcp_unanswered

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux's struct tcp_info")

#: Longer than the kernel needs to reach a zero window and probe it a few times (its probe
#: timer backs off from 200 ms: 0.2, 0.4, 0.8, 1.6, 3.2 s ...), so that the peer's last ACK
#: grows seconds old between two probes while nothing waits for it.
PAUSE = 8.0


@contextmanager
def _pair(user_timeout_ms: int = 0) -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.socket()
        if user_timeout_ms:
            sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sender.connect(server.getsockname())
        receiver, _ = server.accept()
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sender.setblocking(False)
    try:
        yield sender, receiver
    finally:
        sender.close()
        receiver.close()


def _last_ack_age(sock: socket.socket) -> float:
    """``tcpi_last_ack_recv`` (a ``u32`` of milliseconds at offset 56), in seconds."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 60)
    return int.from_bytes(info[56:60], sys.byteorder) / 1e3


def _fill(sender: socket.socket, seconds: float) -> tuple[int, list[float], float, OSError | None]:
    """Write while the receiver does not read; sample ``tcp_unanswered`` meanwhile, and
    (last) the oldest the peer's last ACK got."""
    sent, samples, oldest = 0, list[float](), 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sent += sender.send(b"x" * 65536)
        except BlockingIOError:
            time.sleep(0.05)
        except OSError as exc:
            return sent, samples, oldest, exc
        waited = tcp_unanswered(sender)
        assert waited is not None
        samples.append(waited)
        oldest = max(oldest, _last_ack_age(sender))
    return sent, samples, oldest, None


def _drain(receiver: socket.socket, size: int) -> int:
    receiver.settimeout(30)
    got = 0
    while got < size:
        chunk = receiver.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    return got


def test_a_live_peer_that_stops_reading_is_never_unanswered() -> None:
    with _pair() as (sender, receiver):
        sent, samples, oldest, error = _fill(sender, PAUSE)
        assert error is None
        # The peer's last ACK got seconds old (between two zero-window probes), and yet
        # nothing waited for it: in flight at most for a loopback round trip.
        assert oldest >= 1.0, oldest
        assert samples and max(samples) < 1.0, max(samples)
        assert _drain(receiver, sent) == sent


def test_tcp_user_timeout_would_end_that_live_conn() -> None:
    """Why the watch is not TCP_USER_TIMEOUT (measured on Linux 6.18)."""
    with _pair(user_timeout_ms=500) as (sender, _receiver):
        *_, error = _fill(sender, 4 * PAUSE)
        assert isinstance(error, TimeoutError), error  # ETIMEDOUT, the peer alive
