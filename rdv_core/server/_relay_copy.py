"""The copy relay: both conns of a pair relayed through one server-wide buffer.

docs/PROTOCOL.md section 8; :mod:`._relay` drives it (and :mod:`._splice`, the zero-copy
relay, where it can).

Why transports and BufferedProtocol (docs/ARCHITECTURE.md section 3):
asyncio streams reach only a third of a C relay; a transport-to-transport protocol with
pause/resume_reading flow control reaches parity. CPython's default loop allocates a
fresh 256 KiB ``bytes`` per ``recv``; a BufferedProtocol reads into a buffer we own
instead. All pairs of a server share one buffer: a read is handed to the other
transport's ``write()`` synchronously, which sends it or copies the rest (CPython <
3.12), so the buffer is free again before the next read; transports that keep a
reference instead (CPython >= 3.12, uvloop) make the server switch to a fresh buffer
whenever they hold unsent bytes (:func:`write_may_alias`). Flow control is strict (write
high-water mark about 0): once a destination holds unsent bytes, its source stops
reading until they drain, like Go's ``io.Copy``. An idle pair therefore owns no buffer.
"""

from __future__ import annotations

import asyncio
import mmap
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rdv_core.server._relay import Relayer

__all__ = ["DEFAULT_BUFFER_SIZE", "RelaySide", "SharedBuffer", "write_may_alias"]

#: Read size of the shared relay buffer (the same as CPython's default ``recv`` size).
DEFAULT_BUFFER_SIZE: Final = 256 * 1024


def write_may_alias(transport: object) -> bool:
    """True if ``transport.write()`` may keep a reference to unsent bytes, not a copy.

    CPython < 3.12's socket transport copies unsent bytes into its own bytearray, and
    its TLS transport encrypts (copies) at once. CPython 3.12's socket transport and
    uvloop keep a reference to the memoryview: the shared buffer must then not be
    reused while they hold unsent bytes.
    """
    module = type(transport).__module__
    if module == "asyncio.sslproto":
        return False
    if module == "asyncio.selector_events":
        return sys.version_info >= (3, 12)
    return True


class SharedBuffer:
    """The read buffer all relaying conns of one server take turns on (see module doc)."""

    __slots__ = ("size", "view")

    def __init__(self, size: int = DEFAULT_BUFFER_SIZE) -> None:
        if size < 1024:
            raise ValueError("relay buffer size must be at least 1024 bytes")
        self.size = size
        self.view = memoryview(bytearray(size))

    def detach(self) -> None:
        """Give up the current buffer (a transport still references it): use a fresh one.

        The fresh one is an anonymous mapping, not a bytearray: only the pages a read
        fills count in the server's RSS, and they go back to the system as soon as the
        transport lets go (a heap buffer would be zero-filled whole and, once freed, kept
        by malloc: 1,000 relayed pairs left ~100 MB behind; issue 13).
        """
        self.view = memoryview(mmap.mmap(-1, self.size))


class RelaySide(asyncio.BufferedProtocol):
    """One relaying conn: what it reads goes to ``_dst``; its write pressure pauses ``_dst``."""

    __slots__ = ("_buffer", "_dialer_side", "_dst", "_may_alias", "_relayer")

    def __init__(self, relayer: Relayer, dst: asyncio.Transport, dialer_side: bool) -> None:
        self._relayer = relayer
        self._buffer = relayer._buffer
        self._dst = dst
        self._dialer_side = dialer_side
        self._may_alias = write_may_alias(dst)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        relayer = self._relayer
        if self._dialer_side:
            relayer.bytes_d2a += nbytes
        else:
            relayer.bytes_a2d += nbytes
        if relayer.watching:
            relayer.last_active = relayer._loop.time()
        dst = self._dst
        dst.write(self._buffer.view[:nbytes])
        if self._may_alias and dst.get_write_buffer_size():
            # dst still references part of the buffer: the next read needs a fresh one.
            self._buffer.detach()

    def eof_received(self) -> bool:
        # Passed on as a half-close; True keeps our transport open for the other direction.
        return self._relayer.side_ended(self._dialer_side)

    def pause_writing(self) -> None:
        # Our own transport holds unsent bytes: stop reading the conn that feeds it.
        self._dst.pause_reading()

    def resume_writing(self) -> None:
        relayer = self._relayer
        if not relayer.ended:
            # A slow reader that drained our buffer is activity, not idleness.
            relayer.touch()
            self._dst.resume_reading()

    def connection_lost(self, exc: BaseException | None) -> None:
        relayer = self._relayer
        relayer._lost(relayer.dialer if self._dialer_side else relayer.accepter, exc)
