"""Round-trip time of a connected TCP socket, from the kernel (Linux ``TCP_INFO``).

For a direct conn this is the RTT to the peer; for the relay it is the RTT to the
server (the first hop), which the link strip says.
"""

from __future__ import annotations

import socket
import struct
from typing import Protocol, cast

_TCP_INFO_LEN = 104
_RTT_OFFSET = 68
"""``tcpi_rtt`` (microseconds): 8 one-byte fields, then the 16th ``u32`` of ``struct tcp_info``."""


class _HasGetsockopt(Protocol):
    def getsockopt(self, level: int, option: int, buflen: int) -> bytes: ...


def tcp_rtt_ms(sock: object) -> float | None:
    """The smoothed RTT in milliseconds, or None when the platform or socket cannot say."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None or not hasattr(sock, "getsockopt"):
        return None
    typed = cast(_HasGetsockopt, sock)
    try:
        raw = typed.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_LEN)
    except OSError:
        return None
    if len(raw) < _RTT_OFFSET + 4:
        return None
    (rtt_us,) = struct.unpack_from("I", raw, _RTT_OFFSET)
    return float(rtt_us) / 1000.0
