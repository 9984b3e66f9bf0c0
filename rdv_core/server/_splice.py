"""The zero-copy relay: socket -> pipe -> socket with ``splice(2)``, driven by the loop.

docs/PROTOCOL.md section 8; on the wire nothing changes. The copy relay of
:mod:`._relay` moves every byte through Python (a ``recv_into`` and a ``send`` per read,
about 0.6 CPU s/GiB): on a 2-core machine whose two peers already fill both cores (issue
14), that third process cut the relay to 0.65-0.71 of p2p. Here the kernel moves the
bytes from one socket's receive queue into a pipe and from the pipe into the other socket
(page references, no copy); the loop only learns how many.

Small reads are still copied (``recv_into`` the shared buffer, ``send``): splicing a few
bytes costs the kernel more than copying them, and interactive traffic keeps the copy
relay's round trip. A flow turns to splice after a read of :data:`SPLICE_FROM` bytes and
back after a spliced read under :data:`COPY_BELOW`.

Per direction a :class:`_Flow` reads its source while nothing is held for its destination
(``add_reader``) and stops reading it while the destination is full (``add_writer`` until
what is held has been sent): the strict flow control of the copy relay, with its bound of
one read (``PipePool.size`` bytes) held per direction. Pipes come from a server-wide
:class:`~rdv_core.server._pipes.PipePool` and go back to it as soon as a read has been
passed on whole, so a pair holds a pipe (two descriptors) only per direction whose
destination is full, and the pool keeps at most two free pipes per relayed conn: with no
spliced pair left, the server holds no pipe at all. When no pipe can be had (``EMFILE``),
that read is copied through the shared buffer instead: the relay never stalls because the
server is out of fds.

The sockets are taken out of their transports (:func:`take_over`: a ``dup`` of the
descriptor, then the transport is aborted, which closes only its own descriptor; a loop
refuses ``add_reader`` on a descriptor one of its transports owns). Each socket is then
represented to the rest of the server by a :class:`SplicedConn`, a transport with the
semantics the relayer relies on: ``close()`` stops reading, sends what is held for that
socket, then closes it; ``write_eof()`` shuts its sending side once what is held for it
was sent (a half-close passed on, docs/PROTOCOL.md section 8); ``abort()`` closes at once;
``get_write_buffer_size()`` is what is held for it; ``connection_lost`` is reported
(through ``on_lost``) in a later loop turn, as transports do.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, Final

from rdv_core.server._pipes import PipePool

__all__ = [
    "AVAILABLE",
    "ENV_SWITCH",
    "SplicedConn",
    "can_splice",
    "splice_pair",
    "splice_wanted",
    "take_over",
]

#: Linux with ``os.splice`` (Python >= 3.10); elsewhere the copy relay is used.
AVAILABLE: Final = sys.platform == "linux" and hasattr(os, "splice")
#: ``RDV_RELAY_SPLICE=0`` makes a server built with ``splice=None`` use the copy relay.
ENV_SWITCH: Final = "RDV_RELAY_SPLICE"
#: A read by copy of at least this many bytes turns a flow to splice; a spliced read of
#: fewer turns it back. Splicing a small read costs more than copying it (the kernel
#: copies an skb's linear part into a fresh page for the pipe): interactive traffic keeps
#: the copy relay's round trip, bulk moves without copies.
SPLICE_FROM: Final = 64 * 1024
COPY_BELOW: Final = 16 * 1024
#: Reads a flow does per readiness event while each is passed on whole: fewer wakeups
#: at volume, and one busy pair cannot keep the loop from the others for long (it goes on
#: in the next loop turn). A reader always reads until the socket is empty (EAGAIN), at
#: its end, or at an error: under uvloop an error is reported once (see _on_readable).
READS_PER_EVENT: Final = 4
_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
#: Plain TCP transports whose socket can be taken over: asyncio's and uvloop's (their TLS
#: transports are other classes, and encrypt in user space anyway).
_PLAIN_TRANSPORTS: Final = frozenset(
    {("asyncio.selector_events", "_SelectorSocketTransport"), ("uvloop.loop", "TCPTransport")}
)


def splice_wanted(choice: bool | None) -> bool:
    """Whether a server uses the zero-copy relay: ``choice``, or by default unless
    ``RDV_RELAY_SPLICE=0``; never where splice is not available."""
    if choice is None:
        choice = os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "no", "off")
    return choice and AVAILABLE


def can_splice(transport: asyncio.BaseTransport) -> bool:
    """True for a plain TCP transport of asyncio or uvloop holding no unsent bytes."""
    kind = type(transport)
    if not AVAILABLE or (kind.__module__, kind.__name__) not in _PLAIN_TRANSPORTS:
        return False
    if transport.is_closing() or transport.get_extra_info("sslcontext") is not None:
        return False
    if transport.get_write_buffer_size():  # type: ignore[attr-defined]
        return False  # never happens in practice (a 101 is small); keep its order simple
    sock = transport.get_extra_info("socket")
    return (
        sock is not None
        and sock.family in (socket.AF_INET, socket.AF_INET6)
        and sock.type == socket.SOCK_STREAM
    )


def _nothing() -> None:
    pass


class _Detached(asyncio.Protocol):
    """The protocol of a transport whose socket was taken: its close reports nothing."""


def take_over(
    transports: tuple[asyncio.Transport, asyncio.Transport],
    pool: PipePool,
    on_lost: tuple[Callable[[BaseException | None], None], Callable[[BaseException | None], None]],
) -> tuple[SplicedConn, SplicedConn] | None:
    """Both conns of a pair as :class:`SplicedConn`, or None: keep the transports.

    None when either cannot be spliced or a descriptor cannot be duplicated (``EMFILE``);
    the transports are then untouched. Otherwise both transports are aborted: that closes
    only their own descriptors, the conns live on in ours (no FIN, no RST).
    """
    if not (can_splice(transports[0]) and can_splice(transports[1])):
        return None
    socks: list[socket.socket] = []
    for transport in transports:
        try:
            fd = os.dup(transport.get_extra_info("socket").fileno())
        except OSError:
            break
        try:
            socks.append(socket.socket(fileno=fd))
        except OSError:
            os.close(fd)
            break
    if len(socks) < 2:
        for sock in socks:
            sock.close()
        return None
    conns = []
    for transport, sock, lost in zip(transports, socks, on_lost, strict=True):
        extra = {k: transport.get_extra_info(k) for k in ("peername", "sockname")}
        transport.set_protocol(_Detached())
        transport.abort()
        sock.setblocking(False)
        conns.append(SplicedConn(sock, extra, pool, lost))
    return conns[0], conns[1]


class SplicedConn(asyncio.Transport):
    """One relayed socket, as a transport the server core and the relayer can close."""

    # Slots: an idle relayed pair should cost little more than on the copy relay.
    __slots__ = (
        "_loop",
        "_on_lost",
        "_pool",
        "closed",
        "closing",
        "eof_wanted",
        "fd",
        "inflow",
        "on_eof",
        "on_progress",
        "outflow",
        "sock",
    )

    def __init__(
        self,
        sock: socket.socket,
        extra: dict[str, Any],
        pool: PipePool,
        on_lost: Callable[[BaseException | None], None],
    ) -> None:
        super().__init__(extra={**extra, "socket": sock})
        self.sock = sock
        self.fd = sock.fileno()
        self._pool = pool
        pool.conns += 1
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        #: The flow reading this socket, and the one writing into it (set by splice_pair).
        self.outflow: _Flow | None = None
        self.inflow: _Flow | None = None
        #: What an EOF from this socket does, and what progress writing into it does (the
        #: relayer's, set by splice_pair).
        self.on_eof: Callable[[], object] = _nothing
        self.on_progress: Callable[[], None] = _nothing
        self.closing = False
        self.closed = False
        #: write_eof() was called: shut the sending side once nothing is held for it.
        self.eof_wanted = False

    # ----- the transport API the server uses

    def is_closing(self) -> bool:
        return self.closing or self.closed

    def close(self) -> None:
        """Stop reading; close once what is held for this socket has been sent."""
        if self.closing or self.closed:
            return
        self.closing = True
        if self.outflow is not None:
            self.outflow.stop_reading()
        if self.inflow is None or not self.inflow.pending:
            self._shut(None)

    def abort(self) -> None:
        self._shut(None)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Half-close: no more bytes for this socket once what is held for it was sent."""
        if self.eof_wanted or self.closing or self.closed:
            return
        self.eof_wanted = True
        if self.inflow is None or not self.inflow.pending:
            self._shut_write()

    def _shut_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.fail(exc)

    def get_write_buffer_size(self) -> int:
        return self.inflow.pending if self.inflow is not None else 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("a spliced conn is written by its relay only")

    # ----- the flows

    def drained(self) -> None:
        """What was held for this socket has been sent."""
        if self.closing:
            self._shut(None)
        elif self.eof_wanted:
            self._shut_write()

    def fail(self, exc: OSError) -> None:
        """A read or write on this socket failed (a reset, a broken pipe)."""
        self._shut(exc)

    def _shut(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        # Off the loop's watch before the descriptor goes (epoll keys on it).
        if self.outflow is not None:
            self.outflow.stop_reading()
        if self.inflow is not None:
            self.inflow.drop()
        self.sock.close()
        self._pool.conn_closed()
        self._loop.call_soon(self._on_lost, exc)


class _Flow:
    """One direction: ``src`` -> pipe -> ``dst`` (see module doc)."""

    __slots__ = (
        "_count",
        "_loop",
        "_pool",
        "_view",
        "backlog",
        "bulk",
        "dst",
        "pending",
        "pipe",
        "reading",
        "src",
        "writing",
    )

    def __init__(
        self,
        src: SplicedConn,
        dst: SplicedConn,
        pool: PipePool,
        view: Callable[[], memoryview],
        count: Callable[[int], None],
    ) -> None:
        self.src = src
        self.dst = dst
        self._pool = pool
        self._view = view
        self._count = count
        self._loop = src._loop
        self.pipe: tuple[int, int] | None = None
        #: Bytes to send before the pipe's: the pair's first bytes, or a read by copy.
        self.backlog = memoryview(b"")
        #: Bytes read from src (or given first), not yet sent to dst.
        self.pending = 0
        self.reading = False
        self.writing = False
        #: Reads go through a pipe (else by copy): see SPLICE_FROM.
        self.bulk = False

    def start_reading(self) -> None:
        if not self.reading and not self.src.is_closing() and not self.dst.is_closing():
            self.reading = True
            self._loop.add_reader(self.src.fd, self._on_readable)

    def stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self._loop.remove_reader(self.src.fd)

    def drop(self) -> None:
        """dst is gone: what it was to get is thrown away; src is not read any more."""
        self.stop_reading()
        if self.writing:
            self.writing = False
            self._loop.remove_writer(self.dst.fd)
        if self.pipe is not None:
            self._pool.put(self.pipe, empty=False)
            self.pipe = None
        self.backlog = memoryview(b"")
        self.pending = 0

    def send_first(self, data: bytes) -> None:
        """Send ``data`` before anything read from src (the pair's first bytes)."""
        if data:
            self.backlog = memoryview(data)
            self.pending = len(data)
        self._send()

    def _on_readable(self) -> None:
        for _ in range(READS_PER_EVENT):
            n = self._read()
            if not n or not self._send():
                return  # emptied (EAGAIN), ended, failed, or dst full (reading stopped)
        # More to read: go on in the next loop turn, the other pairs first, rather than
        # wait for the poll. uvloop reports an error on a descriptor (a peer's reset
        # behind bytes we had not read yet) with one call of this reader, then drops the
        # descriptor from its poll: a reader that stopped there (after these reads, or
        # after a short one, taken for an empty socket) was never called again, and the
        # pair stayed open for good, the other peer waiting mid-stream.
        self._loop.call_soon(self._go_on)

    def _go_on(self) -> None:
        if self.reading:
            self._on_readable()

    def _read(self) -> int:
        """One read from src into a pipe (or by copy): how many bytes, 0 if none."""
        if not self.bulk:
            n = self._copy_read()
            if n >= SPLICE_FROM:
                self.bulk = True  # the next reads are likely as big: splice them
            return n
        pipe = self._pool.get()
        if pipe is None:
            return self._copy_read()
        try:
            n = os.splice(self.src.fd, pipe[1], self._pool.size, flags=_FLAGS)
        except BlockingIOError:
            self._pool.put(pipe)
            return 0
        except OSError as exc:
            self._pool.put(pipe)
            self.src.fail(exc)
            return 0
        if n == 0:
            self._pool.put(pipe)
            self._eof()
            return 0
        if n < COPY_BELOW:
            self.bulk = False
        self.pipe = pipe
        self.pending = n
        self._count(n)
        return n

    def _copy_read(self) -> int:
        view = self._view()
        try:
            n = self.src.sock.recv_into(view)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.src.fail(exc)
            return 0
        if n == 0:
            self._eof()
            return 0
        self._count(n)
        try:
            sent = self.dst.sock.send(view[:n])
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.dst.fail(exc)
            return 0
        if sent < n:
            # Copied out of the shared buffer: the next read may reuse it at once.
            self.backlog = memoryview(bytes(view[sent:n]))
            self.pending = n - sent
        return n

    def _eof(self) -> None:
        self.stop_reading()
        self.src.on_eof()

    def _send(self) -> bool:
        """Pass on what is pending; True if all of it went (reading goes on).

        While dst is full, src is not read: dst is watched for writability instead.
        """
        dst_fd = self.dst.fd
        try:
            while self.backlog:
                sent = self.dst.sock.send(self.backlog)
                self.backlog = self.backlog[sent:]
                self.pending -= sent
            while self.pending:
                assert self.pipe is not None
                self.pending -= os.splice(self.pipe[0], dst_fd, self.pending, flags=_FLAGS)
        except BlockingIOError:
            pass
        except OSError as exc:
            self.dst.fail(exc)
            return False
        if self.pending:
            self.stop_reading()
            if not self.writing:
                self.writing = True
                self._loop.add_writer(dst_fd, self._on_writable)
            return False
        if self.pipe is not None:
            self._pool.put(self.pipe)
            self.pipe = None
        if self.writing:
            self.writing = False
            self._loop.remove_writer(dst_fd)
        if self.dst.closing or self.dst.eof_wanted:
            self.dst.drained()
            return False
        self.start_reading()
        return self.reading

    def _on_writable(self) -> None:
        # A slow reader that drains what we hold is activity, not idleness.
        self.dst.on_progress()
        self._send()


def splice_pair(
    d: SplicedConn,
    a: SplicedConn,
    *,
    pool: PipePool,
    view: Callable[[], memoryview],
    count: tuple[Callable[[int], None], Callable[[int], None]],
    on_eof: tuple[Callable[[], object], Callable[[], object]],
    on_progress: Callable[[], None],
    first: tuple[bytes, bytes],
) -> None:
    """Relay between two conns until either is closed (module doc).

    ``count``, ``on_eof`` and ``first`` are per direction, D->A then A->D: the byte
    counters, what an EOF from D (from A) does, and the bytes each destination gets
    before anything relayed. ``view`` is the shared buffer for reads by copy.
    """
    d2a = _Flow(d, a, pool, view, count[0])
    a2d = _Flow(a, d, pool, view, count[1])
    d.outflow = a.inflow = d2a
    a.outflow = d.inflow = a2d
    d.on_eof, a.on_eof = on_eof
    d.on_progress = a.on_progress = on_progress
    d2a.send_first(first[0])
    a2d.send_first(first[1])
