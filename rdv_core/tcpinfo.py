"""The kernel's view of a TCP conn (``getsockopt(TCP_INFO)``): the one place that knows it.

Three readers need ``struct tcp_info``: the race, for the round-trip time of the server
conn (its hint for giving up unanswered SYNs, :mod:`rdv_core.client._dialer`) and whether a
dial's SYN is still unanswered; the silence watches of the client and of the server's
relay (docs/PROTOCOL.md 16.10-16.11), for how long the other end has left a conn
unanswered; and the TUI's link strip, for the RTT it shows. A layer of its own (nothing of
rdv below it) so that the client and the server share it. Each read
asks only for the head of the struct up to the field it needs: the dialer reads the state
while racing, so that read stays a few bytes.

The offsets are Linux's ``struct tcp_info`` (``linux/tcp.h``): eight one-byte fields, the
first being ``tcpi_state``, then ``u32`` fields, the 16th of which is ``tcpi_rtt``
(microseconds, at offset 68).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import Final, Protocol, cast

#: End of the eight one-byte fields that open the struct (``tcpi_state`` is the first).
_STATE_END: Final = 8

#: End of ``tcpi_rtt`` (a ``u32`` of microseconds at offset 68).
_RTT_END: Final = 72

#: End of ``tcpi_min_rtt`` (a ``u32`` of microseconds at offset 148, Linux 4.10 and later: the
#: windowed minimum of the RTT samples).
_MIN_RTT_END: Final = 152

#: ``tcpi_probes`` (unanswered keepalive or zero-window probes, a byte at offset 3),
#: ``tcpi_unacked`` (segments in flight, a ``u32`` at 24) and ``tcpi_last_ack_recv``
#: (milliseconds since the peer's last ACK, a ``u32`` at 56).
_PROBES: Final = 3
_UNACKED: Final = 24
_LAST_ACK_RECV: Final = 56
_LAST_ACK_END: Final = 60

#: ``tcpi_state`` of a Linux socket whose SYN got no answer yet (``TCP_SYN_SENT``).
_LINUX_TCP_SYN_SENT: Final = 2

#: ``tcpi_state`` of a Linux dial that met the peer's SYN and answered it (``TCP_SYN_RECV``).
_LINUX_TCP_SYN_RECV: Final = 3


class _HasGetsockopt(Protocol):
    def getsockopt(self, level: int, option: int, buflen: int) -> bytes: ...


def _read(sock: object, length: int) -> bytes | None:
    """The first ``length`` bytes of ``struct tcp_info``, or None when they cannot be read."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None or not hasattr(sock, "getsockopt"):
        return None
    try:
        info = cast(_HasGetsockopt, sock).getsockopt(socket.IPPROTO_TCP, option, length)
    except OSError:
        return None
    return info if len(info) >= length else None


def tcp_rtt(sock: object) -> float | None:
    """The kernel's smoothed round-trip time of a connected TCP socket, in seconds.

    Works with a plain socket and with asyncio's transport socket
    (``writer.get_extra_info("socket")``). For a direct conn it is the RTT to the peer,
    for the relay the RTT to the server. ``0.0`` when the kernel has no sample yet; None
    where the platform or the socket cannot say.
    """
    info = _read(sock, _RTT_END)
    if info is None:
        return None
    return int.from_bytes(info[_RTT_END - 4 : _RTT_END], sys.byteorder) / 1e6


def tcp_min_rtt(sock: object) -> float | None:
    """The kernel's minimum round-trip time of a connected TCP socket, in seconds.

    Unlike the smoothed RTT of :func:`tcp_rtt`, one inflated sample does not move it: a
    conn whose SYN or SYN-ACK was lost and resent took its first sample a second late, and
    the smoothed RTT still said 0.9 s after the request and the ``101`` had gone both ways
    (a lossy NAT-lab run, docs/LAB-NOTES.md section 11). ``0.0`` without a sample; None
    where the platform or the kernel (before Linux 4.10: a shorter struct) cannot say.
    """
    info = _read(sock, _MIN_RTT_END)
    if info is None:
        return None
    return int.from_bytes(info[_MIN_RTT_END - 4 : _MIN_RTT_END], sys.byteorder) / 1e6


def tcp_unanswered(sock: object) -> float | None:
    """Seconds the peer's kernel has left us unanswered, 0.0 when nothing waits for it.

    Something waits for an answer while segments are in flight (``tcpi_unacked``) or two
    probes in a row went unanswered (``tcpi_probes``: keepalive probes on an idle conn,
    zero-window probes on one whose reader stopped reading; one is out for a round trip
    on a live conn): then it is the time since the peer's last ACK. A live conn whose
    reader stopped reading answers every zero-window probe: 0.0 however long it waits.
    None where the platform or the socket cannot say (docs/PROTOCOL.md section 16.10).
    """
    if sys.platform != "linux":
        return None
    info = _read(sock, _LAST_ACK_END)
    if info is None:
        return None
    unacked = int.from_bytes(info[_UNACKED : _UNACKED + 4], sys.byteorder)
    if not unacked and info[_PROBES] < 2:
        return 0.0
    return int.from_bytes(info[_LAST_ACK_RECV:_LAST_ACK_END], sys.byteorder) / 1e3


def _linux_state(sock: socket.socket) -> int | None:
    """``tcpi_state`` of ``sock`` on Linux, None elsewhere or when it cannot be read."""
    if sys.platform != "linux":
        return None
    info = _read(sock, _STATE_END)
    return None if info is None else info[0]


def syn_unanswered(sock: socket.socket) -> bool:
    """True if the socket still waits for any answer to its SYN (Linux ``SYN_SENT``).

    Such a socket has not seen the peer's SYN, so closing it sends nothing (Linux sends
    an RST on close only from ``SYN_RECV`` on): no half-open simultaneous open dies with
    it. Anywhere but Linux we cannot tell, so we say False and keep waiting.
    """
    return _linux_state(sock) == _LINUX_TCP_SYN_SENT


def syn_answered(sock: socket.socket) -> bool:
    """True if a dial met the peer's SYN first and sent its SYN-ACK (Linux ``SYN_RECV``).

    A simultaneous open half done: the peer's ACK (or SYN-ACK) is still to come. Anywhere
    but Linux we cannot tell, and say False.
    """
    return _linux_state(sock) == _LINUX_TCP_SYN_RECV


#: ``TCP_RTO_MAX_MS`` (Linux 6.15 and later; Python has no name for it yet): the longest
#: the kernel waits between two retransmissions, or two zero-window probes. Its default,
#: 120 s, let a peer whose window stayed closed for minutes (a paused reader) be probed
#: every 2 minutes, so a blackhole then took 158 s to be seen (measured: window closed
#: 60 s); a watch that gives a conn up after S seconds caps it at a third of S, so that
#: two probes fit in S (docs/PROTOCOL.md 16.10).
TCP_RTO_MAX_MS: Final = 44
RTO_MAX_RANGE: Final = (1.0, 120.0)


def cap_backoff(sock: socket.socket, seconds: float) -> None:
    """Cap the kernel's retransmission and probe backoff of ``sock`` at ``seconds`` where
    it can be (Linux 6.15+: ``ENOPROTOOPT`` before, and the 2-minute probes stay)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, round(seconds * 1000))
