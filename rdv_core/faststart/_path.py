"""One path of a fast-start stream: its TCP conn, its socket options, its half-close.

:class:`Path` is what :class:`~rdv_core.faststart._stream.MigratingStream` keeps per conn
(the relay, a direct conn); the rest is what the stream does to a path's socket: Nagle
off and a short unsent queue when it starts carrying frames, and the FIN-then-drain end
of a complete close (docs/PROTOCOL.md 16.4, the close).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from typing import Any, Final

from rdv_core.faststart._frames import Frame, FrameParser

__all__ = [
    "CLOSE_LINGER_S",
    "NOTSENT_LOWAT",
    "READ_SIZE",
    "Path",
    "half_close_and_drain",
    "no_delay",
]

READ_SIZE: Final = 256 * 1024
NOTSENT_LOWAT: Final = 128 * 1024
#: A close that is complete half-closes its paths and reads each to the peer's end, at
#: most this long, before it closes them (docs/PROTOCOL.md 16.4, the close).
CLOSE_LINGER_S: Final = 5.0
NOTSENT_LOWAT_OPT: Final = getattr(socket, "TCP_NOTSENT_LOWAT", 25)


@dataclass(eq=False, slots=True)
class Path:
    """One TCP conn that carries frames (the relay, or a direct conn)."""

    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parser: FrameParser = field(default_factory=FrameParser)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    first: asyncio.Future[Frame] | None = None

    def extra(self, name: str) -> Any:
        return self.writer.get_extra_info(name)


async def half_close_and_drain(path: Path) -> None:
    """Our side of ``path`` ends with a FIN; what the peer still sends is read and dropped
    until its own end, at most :data:`CLOSE_LINGER_S` (a reset or a timeout ends it too)."""
    with contextlib.suppress(OSError, RuntimeError):  # TimeoutError is an OSError
        if path.writer.can_write_eof():
            path.writer.write_eof()
        async with asyncio.timeout(CLOSE_LINGER_S):
            while await path.reader.read(READ_SIZE):
                pass


def no_delay(writer: asyncio.StreamWriter) -> None:
    """Turn Nagle off: a small frame (PING, ACK, SWITCH) must not wait for the ACK of the
    previous one, which the peer may delay by 40 ms. asyncio only does it for sockets made
    with ``proto=IPPROTO_TCP``; rdv's shared-port sockets are made with ``proto=0``."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Keep the kernel's unsent queue short, so a PING or SWITCH does not wait behind
        # megabytes of data (Linux; TCP_NOTSENT_LOWAT is 25 there).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT_OPT, NOTSENT_LOWAT)
