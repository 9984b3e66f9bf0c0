"""A conn taking part in the race (:class:`Link`) and the stream helpers around it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Final

from rdv_core.events import Candidate
from rdv_core.wire import MAX_LINE, Addr, ProtocolError

#: StreamReader limit for every conn: also the bound on a protocol line before we can
#: reject it, and what ``readline()`` allows the application. Reading pauses at twice
#: this much unread data, which keeps a fast peer from filling our memory.
STREAM_LIMIT: Final = 256 * 1024


async def open_stream(
    sock: socket.socket,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Hand a connected socket to asyncio as a stream pair (closing it on failure).

    The socket has Nagle off already: every socket of an attempt is made by
    :func:`~rdv_core.client._sockets.reuse_socket` (the server conn, a proxy tunnel, a
    dial), and an accepted one has it from its listener (client/_accepting.py).
    Setting it again here was two system calls per loopback attempt (issue 10).
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    try:
        transport, _ = await loop.create_connection(
            lambda: protocol, sock=sock, ssl=ssl_context, server_hostname=server_hostname
        )
    except BaseException:
        sock.close()
        raise
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def open_stream_now(
    sock: socket.socket,
    *,
    peername: tuple[Any, ...] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """:func:`open_stream` (plain TCP) without its event-loop turns, or None where it cannot.

    ``loop.create_connection(sock=...)`` makes the transport at once but returns only two
    loop turns later (its waiter is resolved from the loop, then the caller wakes). The
    race hands its winner over at the pick, and those turns were a third of a loopback
    dial's "return" phase (bench/connect.py). asyncio's selector loops make the same
    transport synchronously with ``_make_socket_transport``; its ``connection_made`` and
    its reader still come from the loop, in that order, before any ``data_received``, and
    the writer works at once. That method is asyncio's own (stable since 3.7, used by its
    ``connect_accepted_socket``), not public: other loops (uvloop) get None and the caller
    awaits :func:`open_stream`.

    ``peername``: the peer's address as ``getpeername()`` would say it, when the caller
    knows it (the address an IPv4 socket connected to): the transport then does not ask
    the kernel (one system call, 1-2 us here, issue 10). ``loop``: the running loop, when
    the caller has it (asking for it is a ``getpid()``).
    """
    loop = loop or asyncio.get_running_loop()
    make = getattr(loop, "_make_socket_transport", None)
    if make is None or not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return None
    # Nagle is off already (see open_stream).
    reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    try:
        if sock.gettimeout() != 0:  # most are already (client/_sockets.py): no system call
            sock.setblocking(False)  # as create_connection does
        extra = {"peername": peername} if peername is not None else None
        transport = make(sock, protocol, extra=extra)
    except BaseException:
        sock.close()
        raise
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


#: How much one read of a server conn takes while its ``101`` is awaited. asyncio's
#: selector transports read with ``recv(256 KiB)``: above glibc's 128 KiB ``mmap``
#: threshold, so every read, of a 155-byte ``101`` too, maps a fresh buffer, faults its
#: first page in, shrinks it with ``mremap`` and unmaps it (about 25 us a read on this
#: project's machine against 1-3 us for 64 KiB, bench/connect.py; issue 10). 64 KiB comes
#: from the heap and still takes any ``101`` in one read.
HEAD_READ_SIZE: Final = 64 * 1024


def small_reads(transport: asyncio.BaseTransport) -> None:
    """Let ``transport`` read at most :data:`HEAD_READ_SIZE` at a time (asyncio's selector
    transports; others, uvloop's or TLS, are left as they are)."""
    if getattr(type(transport), "max_size", None) is None:
        return
    with contextlib.suppress(AttributeError):  # a transport type without a __dict__
        transport.max_size = HEAD_READ_SIZE  # type: ignore[attr-defined]


def full_reads(transport: asyncio.BaseTransport) -> None:
    """Undo :func:`small_reads`: the conn may carry the session now (relay), at asyncio's
    own read size, as before."""
    with contextlib.suppress(AttributeError):
        del transport.max_size  # type: ignore[attr-defined]


class PeerClosed(EOFError):
    """The other end closed the conn cleanly, between lines."""


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """Read one ``\\n``-terminated rdv line (without the ``\\n``), keeping what follows.

    Raises:
        PeerClosed: on EOF before any byte of the line.
        ProtocolError: on EOF inside the line, or a line longer than ``MAX_LINE``.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise PeerClosed("the conn was closed") from None
        raise ProtocolError("EOF inside an rdv line") from None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"rdv line longer than {MAX_LINE} bytes") from None
    if len(line) > MAX_LINE:
        raise ProtocolError(f"rdv line longer than {MAX_LINE} bytes")
    return line[:-1]


def addr_of(sockaddr: Any) -> Addr | None:
    """The :class:`Addr` of a socket address, or None when it is not an IP one."""
    try:
        return _addr_of(tuple(sockaddr))
    except (TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=256)
def _addr_of(sockaddr: tuple[Any, ...]) -> Addr:
    # Every conn of an attempt asks for the same few addresses (P on each family, the
    # peer's); parsing them costs about a tenth of a loopback attempt's CPU.
    return Addr.from_sockaddr(sockaddr)


@dataclass(eq=False, slots=True)
class Link:
    """A TCP conn to the peer that takes part in the race (direct or the relay)."""

    candidate: Candidate
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    is_relay: bool
    local: Addr
    remote: Addr

    @classmethod
    def from_stream(
        cls,
        candidate: Candidate,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        is_relay: bool,
        fallback_remote: Addr,
    ) -> Link:
        """Build from a stream pair, reading both ends' addresses from the socket."""
        local = addr_of(writer.get_extra_info("sockname")) or Addr.parse("0.0.0.0:0")
        remote = addr_of(writer.get_extra_info("peername")) or fallback_remote
        return cls(candidate, reader, writer, is_relay, local, remote)

    @property
    def alive(self) -> bool:
        """False once we closed it or the transport is going away."""
        return not self.writer.transport.is_closing()

    def close(self) -> None:
        """Close without further bytes (buffered bytes, if any, are still flushed)."""
        self.writer.close()
