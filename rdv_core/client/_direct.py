"""A direct conn during the race: a bare socket until it wins (docs/PROTOCOL.md section 6).

The race authenticates every direct conn with one header line each way and, on the
accepter, waits for the dialer's command line. Only one of those conns ever carries
data, so none gets an asyncio transport and stream pair during the race: each line is
read straight from the socket, and only the winner becomes a :class:`Link` with a
stream (:meth:`DirectConn.to_link`): a stream pair costs a transport, a reader and an
event-loop turn per conn, for conns that are mostly closed a moment later.

A line is taken from the kernel with ``MSG_PEEK`` first and then consumed to its
``\\n`` exactly, so that whatever follows it (the command, then application bytes)
stays in the socket for the next read or for the winner's stream.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from dataclasses import dataclass
from typing import Final

from rdv_core.client._link import Link, PeerClosed, addr_of, open_stream, open_stream_now
from rdv_core.events import Candidate
from rdv_core.wire import MAX_LINE, Addr, ProtocolError, check_header_line

#: The local address of a conn that died before we could ask (as ``Link.from_stream``).
_UNKNOWN = Addr.parse("0.0.0.0:0")


#: How long a direct conn may take to deliver the peer's header line. The peer writes
#: it the instant TCP is up, so this only bounds conns from strangers that never speak
#: (on the accepter, which has no picker deadline, they would otherwise live until
#: the attempt ends). Generous, because a loaded or lossy path can need several RTTs.
HANDSHAKE_TIMEOUT: Final = 10.0


@dataclass(eq=False, slots=True)
class DirectConn:
    """A connected, non-blocking TCP socket to (maybe) the peer, taking part in the race."""

    candidate: Candidate
    sock: socket.socket
    #: Our end; None until the conn wins (:meth:`known`): its stream's transport asks.
    local: Addr | None
    remote: Addr
    #: The peer's header line, when :meth:`answer_now` found it already in the socket.
    early: bytes | None = None
    #: True once :meth:`answer_now` checked that line and answered it.
    answered: bool = False
    #: The start of a line whose end has not arrived yet (:meth:`take_line`).
    partial: bytes = b""
    #: The loop whose reader still watches this socket (:meth:`hold_reader`), if any.
    held_by: asyncio.AbstractEventLoop | None = None

    #: Always False: the relay is a :class:`Link` from the start (for pickers and cleanup).
    is_relay = False

    @classmethod
    def of(cls, candidate: Candidate, sock: socket.socket, fallback_remote: Addr) -> DirectConn:
        """Wrap a connected socket, reading both ends' addresses from it."""
        try:
            local = addr_of(sock.getsockname())
            remote = addr_of(sock.getpeername())
        except OSError:  # reset already: the first read will say so
            local = remote = None
        return cls(candidate, sock, local or _UNKNOWN, remote or fallback_remote)

    @classmethod
    def known(cls, candidate: Candidate, sock: socket.socket, remote: Addr) -> DirectConn:
        """As :meth:`of`, with no system call: the peer's address is known already (the
        one we dialled, or the one ``accept()`` returned, which is what ``getpeername``
        would say), and ours is needed only if the conn wins, when its transport has
        asked the kernel anyway (two system calls less per conn: issue 10)."""
        return cls(candidate, sock, None, remote)

    @property
    def alive(self) -> bool:
        """False once closed."""
        return self.sock.fileno() >= 0

    def close(self) -> None:
        """Close without further bytes."""
        self.drop_reader()
        self.sock.close()

    def hold_reader(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep the race's reader registration of this socket while the picker decides.

        The dialer's conns wait for the pick with their bytes in the kernel, and the
        winner's transport registers the same descriptor for reading at once: leaving the
        race's registration in place makes that a change of callback in asyncio's
        selector (no system call), where removing it and adding it again cost an
        ``epoll_ctl`` each (issue 10). The caller's reader must call :meth:`drop_reader`
        if it fires meanwhile (EOF or bytes: epoll would report them on every turn).
        """
        self.held_by = loop

    def drop_reader(self) -> None:
        """Remove the reader :meth:`hold_reader` kept, if it is still there."""
        loop, self.held_by = self.held_by, None
        if loop is not None:
            loop.remove_reader(self.sock.fileno())

    def send(self, data: bytes) -> None:
        """Send a protocol line at once: the socket's buffer is empty this early.

        Raises:
            OSError: the conn is broken, or (never seen: a fresh conn's buffer holds
                many lines) the kernel took only part of the line (``EAGAIN``).
        """
        rest = self.send_some(data)
        if rest:
            raise OSError(errno.EAGAIN, f"only {len(data) - len(rest)} of {len(data)} bytes sent")

    def send_some(self, data: bytes) -> bytes:
        """Send what the kernel takes now; the bytes it did not take (an error: all)."""
        try:
            return data[self.sock.send(data) :]
        except OSError:
            return data

    async def read_line(self) -> bytes:
        """One ``\\n``-terminated line (without the ``\\n``); what follows stays unread.

        Raises:
            PeerClosed: EOF before any byte of the line.
            ProtocolError: EOF inside the line, or a line longer than ``MAX_LINE``.
            OSError: the conn failed.
        """
        while (line := self.take_line()) is None:
            await _readable(self.sock)
        return line

    def take_line(self) -> bytes | None:
        """The next line if the kernel has all of it now, else None (call again when readable).

        The race's reader callbacks (client/_exchange.py) call this; so does
        :meth:`read_line`. A part of a line is kept here between calls.

        Raises:
            The errors of :meth:`read_line`.
        """
        sock = self.sock
        while True:
            try:
                data = sock.recv(MAX_LINE - len(self.partial), socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                return None
            if not data:
                if self.partial:
                    raise ProtocolError("EOF inside an rdv line")
                raise PeerClosed("the conn was closed")
            end = data.find(b"\n")
            if end >= 0:
                sock.recv(end + 1)  # exactly the line: the bytes after it stay queued
                line, self.partial = self.partial + data[:end], b""
                return line
            # Part of a line, all ours: take it, so that the socket is readable only
            # when more comes (else a slow sender would spin us).
            sock.recv(len(data))
            self.partial += data
            if len(self.partial) >= MAX_LINE:
                raise ProtocolError(f"rdv line longer than {MAX_LINE} bytes")

    def answer_now(self, header: bytes, method: str, token: str) -> None:
        """Inbound: if the peer's line is already here, check it and answer it at once.

        The accept loop calls this before it hands the conn to its task, which saves the
        dialer (waiting for our line) one turn of our event loop. Anything but a good,
        complete line is left for :meth:`authenticate`, which reports it as usual.
        """
        try:
            data = self.sock.recv(MAX_LINE, socket.MSG_PEEK)
            end = data.find(b"\n")
            if end < 0:
                return
            self.sock.recv(end + 1)
            self.early = data[:end]
            check_header_line(self.early, method, token)
            self.send(header)
        except (OSError, ProtocolError):
            # Nothing yet (BlockingIOError), broken, or a wrong line: the task reports it.
            return
        self.answered = True

    async def to_link(self) -> Link:
        """The winner's stream pair (closing the socket if asyncio cannot take it)."""
        link = self.to_link_now()
        if link is not None:
            return link
        self.drop_reader()  # another loop's transport must find the descriptor free
        return self._link(*await open_stream(self.sock))

    def to_link_now(self, loop: asyncio.AbstractEventLoop | None = None) -> Link | None:
        """:meth:`to_link` without an event-loop turn, or None where the loop cannot."""
        # An IPv4 socket's peer is what getpeername() would say: the transport need not ask.
        peer = self.remote.sockaddr() if self.sock.family == socket.AF_INET else None
        held, self.held_by = self.held_by, None  # the transport's reader replaces ours
        try:
            pair = open_stream_now(self.sock, peername=peer, loop=loop)
        except BaseException:
            self.held_by = held
            self.drop_reader()  # the socket is closed: asyncio's selector must forget it
            raise
        if pair is None:  # not a selector loop: to_link drops the reader, then awaits
            self.held_by = held
            return None
        return self._link(*pair)

    def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Link:
        local = self.local or addr_of(writer.get_extra_info("sockname")) or _UNKNOWN
        return Link(self.candidate, reader, writer, False, local, self.remote)


async def _readable(sock: socket.socket) -> None:
    """Wait until ``sock`` has bytes or EOF (or an error) to report."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, _wake, waiter)
    try:
        await waiter
    finally:
        loop.remove_reader(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
