"""Byte channels under a session: records in, bytes out, flow control.

A session reads length-prefixed records and writes bytes. Two implementations:

- :class:`StreamChannel` works over any ``(StreamReader, StreamWriter)`` pair.
- :class:`SocketChannel` takes over a plain socket transport (``set_protocol``) with
  an :class:`asyncio.BufferedProtocol`: the kernel copies straight into one
  preallocated buffer and records are decrypted from views of it: a StreamReader's
  allocations and copies cost more than AES-GCM and SHA-256 together
  (docs/LAB-NOTES.md section 10). The old protocol
  still learns of ``connection_lost``, so ``writer.wait_closed()`` keeps working.

:func:`open_channel` picks the fast one when it can (a socket transport without
TLS) and the generic one otherwise.

Writes on the socket channel are *corked*: frames written in one run of the event
loop (a reader answering a burst of small files with acks and results, a sender's
``data`` then ``done``) leave in one ``send`` when the loop next goes idle, or at the
next ``drain()``, instead of one syscall (and one wake-up of the peer) per frame
(docs/PROTOCOL.md section 12.11: frames still leave in nonce order).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from rdv_core.session._errors import ConnectionLost, connection_lost
from rdv_core.session._record import RECORD_HEADER, record_length

log = logging.getLogger("rdv.session")

#: Receive buffer of the socket channel: room for several maximal records.
BUFFER_SIZE = 4 << 20
#: Stop reading from the socket above this much unread data (bounded memory)...
PAUSE_ABOVE = 2 << 20
#: ...and read again below this much.
RESUME_BELOW = 1 << 20
#: Compact the buffer when less than this is free at its end.
MIN_FREE = 256 * 1024
#: Corked bytes above which a write goes out at once rather than at the end of the
#: loop iteration (bounds what the cork holds; a bulk record is flushed by drain()).
CORK_LIMIT = 256 * 1024


class Channel(Protocol):
    """What a session needs from the connection."""

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes (for the plaintext prelude).

        Raises:
            ConnectionLost: EOF or error first.
        """

    async def read_record(self) -> memoryview | bytes:
        """The next record's body (ciphertext); a view valid until the next read.

        Raises:
            FrameError: a header announces an impossible length.
            ConnectionLost: EOF or error first.
        """

    #: Bytes :meth:`write` accepted so far, in all.
    written: int

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes (the object must not be modified until :meth:`taken` covers them)."""

    def taken(self) -> int | None:
        """How many of the :attr:`written` bytes the kernel has taken, so that their
        buffers may be reused; None when this channel cannot tell (never reuse one)."""

    def unsent(self) -> int:
        """Bytes written and not taken by the kernel yet (what the peer has not read)."""

    def abort(self) -> None:
        """Close the connection at once, dropping what is unsent (idempotent)."""

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark.

        Raises:
            ConnectionLost: the connection is gone.
        """

    def close(self) -> None:
        """Close the connection (idempotent)."""


#: A conn that ended cleanly between records, without the peer's ``close``.
PEER_HUNG_UP = "the peer hung up"


def _lost(exc: BaseException | None, partial: bool) -> ConnectionLost:
    if exc is not None:
        return connection_lost(exc)
    return ConnectionLost("connection lost mid-frame" if partial else PEER_HUNG_UP)


class StreamChannel:
    """A channel over any asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.written = 0

    async def readexactly(self, n: int) -> bytes:
        """See :class:`Channel`."""
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise _lost(None, bool(exc.partial)) from None
        except OSError as exc:
            raise _lost(exc, False) from exc

    async def read_record(self) -> bytes:
        """See :class:`Channel`."""
        header = await self.readexactly(RECORD_HEADER.size)
        try:
            return await self._reader.readexactly(record_length(header))
        except asyncio.IncompleteReadError:
            raise _lost(None, True) from None
        except OSError as exc:
            raise _lost(exc, True) from exc

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """See :class:`Channel`."""
        self.written += len(data)
        self._writer.write(data)

    def taken(self) -> None:
        """See :class:`Channel`: a stream of unknown kind (TLS, fast start) cannot tell."""
        return None

    def unsent(self) -> int:
        """See :class:`Channel`."""
        return self._writer.transport.get_write_buffer_size()

    def abort(self) -> None:
        """See :class:`Channel`."""
        self._writer.transport.abort()

    async def drain(self) -> None:
        """See :class:`Channel`."""
        try:
            await self._writer.drain()
        except OSError as exc:
            raise _lost(exc, False) from exc

    def close(self) -> None:
        """See :class:`Channel`."""
        self._writer.close()


class SocketChannel(asyncio.BufferedProtocol):
    """A channel that owns a socket transport's reads (see the module docstring)."""

    def __init__(
        self, transport: asyncio.Transport, previous: asyncio.BaseProtocol, leftover: bytes
    ) -> None:
        self._transport = transport
        self._previous = previous
        self._buffer = bytearray(max(BUFFER_SIZE, 2 * len(leftover)))
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = len(leftover)
        self._buffer[: self._end] = leftover
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._error: BaseException | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._corked: list[bytes | bytearray | memoryview] = []
        self._corked_bytes = 0
        self.written = 0

    # ----- asyncio.BufferedProtocol

    def get_buffer(self, sizehint: int) -> memoryview:
        """Free space at the end of the buffer (compacting first if it is short)."""
        if len(self._buffer) - self._end < MIN_FREE:
            self._compact()
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """The kernel wrote ``nbytes`` into our buffer."""
        self._end += nbytes
        if not self._reading_paused and self._end - self._start >= PAUSE_ABOVE:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        """Keep the transport open for writing: the session decides when to close."""
        self._eof = True
        self._wake()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Record the end, release waiters, and tell the streams' protocol too."""
        self._eof = True
        self._error = exc
        self._wake()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(_lost(exc, False))
        self._drain_waiters.clear()
        self._previous.connection_lost(exc)

    def pause_writing(self) -> None:
        """The transport's write buffer is above its high-water mark."""
        self._writing_paused = True

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark."""
        self._writing_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # ----- Channel

    async def readexactly(self, n: int) -> bytes:
        """See :class:`Channel`."""
        while self._end - self._start < n:
            await self._wait(partial=self._end > self._start)
        data = bytes(self._view[self._start : self._start + n])
        self._consumed(n)
        return data

    async def read_record(self) -> memoryview:
        """See :class:`Channel`."""
        while self._end - self._start < RECORD_HEADER.size:
            await self._wait(partial=self._end > self._start)
        length = record_length(self._view[self._start : self._start + RECORD_HEADER.size])
        total = RECORD_HEADER.size + length
        while self._end - self._start < total:
            if self._start + total > len(self._buffer):
                self._compact()
            await self._wait(partial=True)
        body = self._view[self._start + RECORD_HEADER.size : self._start + total]
        self._consumed(total)
        return body

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """See :class:`Channel`; corked until the loop goes idle or :meth:`drain`."""
        self.written += len(data)
        if not self._corked and len(data) >= CORK_LIMIT:
            self._transport.write(data)  # a bulk record: nothing to gain from corking
            return
        if not self._corked:
            asyncio.get_running_loop().call_soon(self.flush)
        self._corked.append(data)
        self._corked_bytes += len(data)
        if self._corked_bytes >= CORK_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Hand every corked frame to the transport, in order, as few writes as possible."""
        corked = self._corked
        if not corked:
            return
        self._corked, self._corked_bytes = [], 0
        if self._transport.is_closing():
            return
        if len(corked) == 1:
            self._transport.write(corked[0])
        else:
            # One copy of small frames beats one syscall per frame; writelines joins.
            self._transport.writelines(corked)

    def taken(self) -> int:
        """See :class:`Channel`. The transport's write buffer is what the kernel did not
        take yet, oldest bytes first (asyncio 3.11 copies it, 3.12+ and uvloop keep
        views of ours: either way every byte before it is out of our buffers)."""
        return self.written - self._corked_bytes - self._transport.get_write_buffer_size()

    def unsent(self) -> int:
        """See :class:`Channel`."""
        return self._corked_bytes + self._transport.get_write_buffer_size()

    def abort(self) -> None:
        """See :class:`Channel`."""
        self._corked, self._corked_bytes = [], 0
        self._transport.abort()

    async def drain(self) -> None:
        """See :class:`Channel`."""
        self.flush()
        if self._transport.is_closing():
            # A failed send closes the transport at once, but connection_lost only runs
            # later, and a sender that never yields would go on sealing (and asyncio on
            # logging "socket.send() raised exception." per chunk): stop at the first.
            raise _lost(self._error, False)
        if not self._writing_paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def close(self) -> None:
        """See :class:`Channel` (corked frames go first)."""
        self.flush()
        self._transport.close()

    # ----- internals

    def _consumed(self, n: int) -> None:
        self._start += n
        if self._start == self._end:
            self._start = self._end = 0
        if self._reading_paused and self._end - self._start < RESUME_BELOW:
            self._reading_paused = False
            self._transport.resume_reading()

    def _compact(self) -> None:
        # Only unread bytes move (at most a record and a read); views handed out
        # earlier were consumed synchronously by the caller before it awaited again.
        size = self._end - self._start
        if self._start:
            self._buffer[:size] = self._view[self._start : self._end]
        self._start, self._end = 0, size

    async def _wait(self, *, partial: bool) -> None:
        if self._eof:
            raise _lost(self._error, partial)
        if self._reading_paused:
            # We need more than we hold: a record of the largest size can be short of its
            # end with 1 MiB and more still unread (RESUME_BELOW), and waiting for the
            # resume there waited for good. The buffer holds two such records (bounded).
            self._reading_paused = False
            self._transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def open_channel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Channel:
    """The fastest channel that works for this stream pair (see the module docstring)."""
    transport = writer.transport
    buffered = getattr(reader, "_buffer", None)  # private, but the only way to keep bytes
    can_take_over = (
        isinstance(transport, asyncio.Transport)
        and transport.get_extra_info("socket") is not None
        and transport.get_extra_info("sslcontext") is None
        and isinstance(buffered, bytearray)
        and reader.exception() is None
        and not reader.at_eof()
        and not transport.is_closing()
    )
    if not can_take_over:
        return StreamChannel(reader, writer)
    assert isinstance(transport, asyncio.Transport) and isinstance(buffered, bytearray)
    leftover = bytes(buffered)
    buffered.clear()
    channel = SocketChannel(transport, transport.get_protocol(), leftover)
    transport.set_protocol(channel)
    transport.resume_reading()  # the StreamReader may have paused it
    log.debug("session reads the socket directly (%d bytes carried over)", len(leftover))
    return channel
