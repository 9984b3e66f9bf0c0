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

Per direction a :class:`~._splice_flow.Flow` reads its source while nothing is held for
its destination (``add_reader``) and stops reading it while the destination is full
(``add_writer`` until what is held has been sent): the strict flow control of the copy
relay, with its bound of one read (``PipePool.size`` bytes) held per direction. Pipes
come from a server-wide :class:`~rdv_core.server._pipes.PipePool` and go back to it as
soon as a read has been passed on whole, so a pair holds a pipe (two descriptors) only
per direction whose destination is full, and the pool keeps at most two free pipes per
relayed conn: with no spliced pair left, the server holds no pipe at all. When no pipe
can be had (``EMFILE``), that read is copied through the shared buffer instead: the relay
never stalls because the server is out of fds.

A flow that turned bulk (a read went through a pipe) is then moved by a thread of its own,
``poll`` and splice into a 1 MiB pipe, with no loop wake-up per read, until it ends, fails,
comes back to small reads, or the loop takes it back to close a conn
(:mod:`._splice_thread`, which has the rules; at most ``MAX_RELAY_THREADS`` per server,
``RDV_RELAY_THREADS=0`` for none).

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
from rdv_core.server._splice_flow import COPY_BELOW, READS_PER_EVENT, SPLICE_FROM, Flow

__all__ = [
    "AVAILABLE",
    "COPY_BELOW",
    "ENV_SWITCH",
    "READS_PER_EVENT",
    "SPLICE_FROM",
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
        self.outflow: Flow | None = None
        self.inflow: Flow | None = None
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
        if self.inflow is not None:
            self.inflow.on_loop()  # what it holds for this socket is now known
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
        if self.inflow is not None:
            self.inflow.on_loop()
        if self.inflow is None or not self.inflow.pending:
            self._shut_write()

    def _shut_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.fail(exc)

    def get_write_buffer_size(self) -> int:
        inflow = self.inflow
        if inflow is None:
            return 0
        return inflow.pending + (inflow.mover.held if inflow.mover is not None else 0)

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
    counters (called in a relay thread too: they must only add and stamp the time), what
    an EOF from D (from A) does, and the bytes each destination gets before anything
    relayed. ``view`` is the shared buffer for reads by copy.
    """
    d2a = Flow(d, a, pool, view, count[0])
    a2d = Flow(a, d, pool, view, count[1])
    d.outflow = a.inflow = d2a
    a.outflow = d.inflow = a2d
    d.on_eof, a.on_eof = on_eof
    d.on_progress = a.on_progress = on_progress
    d2a.send_first(first[0])
    a2d.send_first(first[1])
