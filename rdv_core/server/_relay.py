"""The Relayer: one matched pair, from the two ``101`` responses to the last byte relayed.

docs/PROTOCOL.md section 8. After matching, the relayer

1. writes the ``101`` to the dialer D, then to the accepter A (each in one write: a
   response split in many segments costs clients a round trip on slow links);
2. reads one command line from D (bounded only by the idle timeout) while A is parked:
   ``CONTINUE`` -> writes ``CONTINUE\\n`` to A, plus any bytes that followed D's line,
   and relays; ``OTHER addr`` -> the peers went direct, both conns are closed;
   anything else, or EOF -> both conns are closed;
3. relays, counting bytes, and passes each end on as what it is: a side's EOF becomes a
   half-close toward its partner (``shutdown(SHUT_WR)`` once what is held for it was sent)
   while the other direction goes on, and the pair closes at the second EOF, or once the
   open direction has moved nothing for :data:`HALF_OPEN_QUIET_S`; a side's reset (or any
   error) resets its partner (``SO_LINGER`` 0). A TLS conn cannot half-close: there the
   first EOF closes both, as the reference does for every pair. On Linux, plain TCP conns are
   relayed by the kernel, socket to pipe to socket (:mod:`._splice`, given a pipe pool);
   otherwise (TLS, another platform, ``splice=False``, no fd for a ``dup``) by the copy
   relay below. Both keep the same rules: strict flow control, one read's worth held per
   direction at most, the same counters, events and close reasons.

The copy relay (the shared buffer, strict flow control) is :mod:`._relay_copy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Final, cast

from rdv_core import wire
from rdv_core.server._peer import Peer
from rdv_core.server._pipes import PipePool
from rdv_core.server._relay_copy import (
    DEFAULT_BUFFER_SIZE,
    RelaySide,
    SharedBuffer,
    write_may_alias,
)
from rdv_core.server._splice import splice_pair, take_over
from rdv_core.server._stats import PairPath, PairStats
from rdv_core.wire import CONTINUE_LINE, Continue, LineBuffer, Other, ProtocolError

__all__ = [
    "CLOSE_LINGER_S",
    "DEFAULT_BUFFER_SIZE",
    "HALF_OPEN_QUIET_S",
    "Relayer",
    "SharedBuffer",
    "write_may_alias",
]

log = logging.getLogger("rdv.relay")

#: A closed conn whose peer stops reading keeps its unsent bytes at most this long.
CLOSE_LINGER_S: Final = 10.0
#: After one side's EOF, the other direction keeps the pair open while it moves bytes (or
#: the server holds some for a paused reader); this long without either closes the pair,
#: as the reference closes it at the first EOF (docs/PROTOCOL.md section 8): a peer that
#: ended its side is not kept waiting forever by a partner that never ends its own.
HALF_OPEN_QUIET_S: Final = 30.0


class Relayer:
    """One matched pair: the continue step, then the relay (see module doc).

    The server creates it and calls :meth:`start` (or :meth:`reject`); :meth:`close`
    ends the pair at any time. The relayer reports through the two callbacks it is
    given, never to the server itself:

    - ``on_relay_started(relayer)`` once D sent ``CONTINUE``, before the first relayed
      byte; it may call :meth:`refuse_relay` to close the pair instead;
    - ``on_pair_ended(relayer, reason)`` once, when both conns are being closed.
    """

    __slots__ = (
        "_a_early",
        "_buffer",
        "_first_eof",
        "_half_handle",
        "_idle_handle",
        "_idle_timeout",
        "_loop",
        "_on_pair_ended",
        "_on_relay_started",
        "_pipes",
        "accepter",
        "bytes_a2d",
        "bytes_d2a",
        "dialer",
        "end_reason",
        "ended",
        "last_active",
        "other_addr",
        "pair_id",
        "path",
        "started",
        "started_t",
        "watching",
    )

    def __init__(
        self,
        pair_id: int,
        dialer: Peer,
        accepter: Peer,
        *,
        buffer: SharedBuffer,
        idle_timeout: float | None,
        started_t: float,
        on_pair_ended: Callable[[Relayer, str], None],
        on_relay_started: Callable[[Relayer], None] | None = None,
        pipes: PipePool | None = None,
    ) -> None:
        self.pair_id = pair_id
        self.dialer = dialer
        self.accepter = accepter
        self._buffer = buffer
        #: Pipes for the zero-copy relay; None: always the copy relay.
        self._pipes = pipes
        self._idle_timeout = idle_timeout
        self._on_pair_ended = on_pair_ended
        self._on_relay_started = on_relay_started
        self._loop = asyncio.get_running_loop()
        self.started = self._loop.time()
        self.started_t = started_t
        self.last_active = self.started
        self._idle_handle: asyncio.TimerHandle | None = None
        #: The reason of the first side's EOF once it was passed on as a half-close.
        self._first_eof = ""
        self._half_handle: asyncio.TimerHandle | None = None
        #: Reads record their time (for the idle timeout, and once half-open).
        self.watching = idle_timeout is not None
        self._a_early = b""
        self.bytes_d2a = 0
        self.bytes_a2d = 0
        self.path = PairPath.PENDING
        self.other_addr: str | None = None
        self.ended = False
        self.end_reason = ""

    # ----- lifecycle

    def start(self, response_d: bytes, response_a: bytes) -> None:
        """Write the two ``101`` responses (D first) and wait for D's command."""
        d, a = self.dialer.transport, self.accepter.transport
        d.set_protocol(_CommandReader(self))
        a.set_protocol(_Parked(self, self.accepter))
        # A sends nothing before CONTINUE; whatever it sends early waits in the kernel.
        a.pause_reading()
        d.write(response_d)
        a.write(response_a)
        if self._idle_timeout is not None:
            self._idle_handle = self._loop.call_at(
                self.started + self._idle_timeout, self._check_idle
            )

    def reject(self, status: int, reason: str) -> None:
        """Refuse the pair: both peers get a section 5 error, both conns close."""
        body = wire.build_upgrade_error(status, reason)
        for peer in (self.dialer, self.accepter):
            peer.transport.set_protocol(_Parked(self, peer))
            peer.transport.write(body)
        self.close(f"rejected {status}")

    def close(self, reason: str, *, reset: bool = False) -> None:
        """End the pair: close both conns (flushing what they hold) and report once.

        ``reset``: end both with a TCP RST instead, for an end that is the server's and
        not a peer's (shutdown), or for a peer's reset passed on. After a ``FIN`` a peer
        cannot tell it from the other peer's end of stream: a receiver cut by a server's
        SIGTERM took its truncated stream for a whole one (``rdv accept`` exited 0), the
        sender blamed the peer.
        """
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        for handle in (self._idle_handle, self._half_handle):
            if handle is not None:
                handle.cancel()
        self._idle_handle = self._half_handle = None
        for peer in (self.dialer, self.accepter):
            if reset:
                _reset(peer.transport)
            else:
                _close_flushing(peer.transport)
        self._on_pair_ended(self, reason)

    def refuse_relay(self, reason: str) -> None:
        """Close a pair whose dialer picked the relay (from ``on_relay_started``).

        D expects no HTTP any more after its ``CONTINUE``: the conns are simply closed.
        """
        self.path = PairPath.RELAY_REFUSED
        self.close(reason)

    def stats(self, token: str, dialer: str, accepter: str) -> PairStats:
        """A snapshot of this pair's counters."""
        return PairStats(
            self.pair_id,
            token,
            dialer,
            accepter,
            self.started_t,
            self.path,
            self.bytes_d2a,
            self.bytes_a2d,
        )

    @property
    def duration_s(self) -> float:
        """Seconds since the pair was matched."""
        return self._loop.time() - self.started

    # ----- continue step

    def _on_command_line(self, line: bytes, rest: bytes) -> None:
        try:
            command = wire.parse_command(line)
        except ProtocolError as exc:
            self.close(f"protocol error: {exc.message}")
            return
        if isinstance(command, Other):
            self.path = PairPath.P2P
            self.other_addr = str(command.addr)
            self.close("p2p")
            return
        assert isinstance(command, Continue)
        self._start_relay(rest)

    def _start_relay(self, rest: bytes) -> None:
        self.path = PairPath.RELAYED
        if self._on_relay_started is not None:
            self._on_relay_started(self)
        if self.ended:
            return
        # Bytes that followed D's command in the same read belong to A, after CONTINUE;
        # bytes A sent early go to D first (section 8).
        early, self._a_early = self._a_early, b""
        self.bytes_d2a += len(rest)
        self.bytes_a2d += len(early)
        to_a, accepter = CONTINUE_LINE + rest, self.accepter.transport
        if self._pipes is not None and not accepter.get_write_buffer_size():
            # Forwarded before the splice is set up: with fast start these are the
            # session's first bytes (docs/PROTOCOL.md 16.9). What the socket did not
            # take stays in the transport, which the copy relay then keeps.
            accepter.write(to_a)
            to_a = b""
            if accepter.get_write_buffer_size():
                self._copy(to_a, early)
                self.touch()
                return
        if self._pipes is None or not self._splice(to_a, early):
            self._copy(to_a, early)
        self.touch()

    def _splice(self, to_a: bytes, to_d: bytes) -> bool:
        """Relay with splice(2) (:mod:`._splice`) if both conns allow it."""
        assert self._pipes is not None
        dialer, accepter = self.dialer, self.accepter
        conns = take_over(
            (dialer.transport, accepter.transport),
            self._pipes,
            (lambda exc: self._lost(dialer, exc), lambda exc: self._lost(accepter, exc)),
        )
        if conns is None:
            return False
        dialer.transport, accepter.transport = conns
        splice_pair(
            *conns,
            pool=self._pipes,
            view=self._buffer_view,
            count=(self._count_d2a, self._count_a2d),
            on_eof=(lambda: self.side_ended(True), lambda: self.side_ended(False)),
            on_progress=self.touch,
            first=(to_a, to_d),
        )
        return True

    def _copy(self, to_a: bytes, to_d: bytes) -> None:
        """Relay through the shared buffer (module doc)."""
        d, a = self.dialer.transport, self.accepter.transport
        d.set_protocol(RelaySide(self, a, dialer_side=True))
        a.set_protocol(RelaySide(self, d, dialer_side=False))
        # Strict flow control (module docstring). high=1, low=0 rather than high=0:
        # CPython's TLS transport pauses at ``size >= high`` and would stay paused on
        # an empty buffer with high=0; plain transports pause at ``size > high``.
        d.set_write_buffer_limits(high=1, low=0)
        a.set_write_buffer_limits(high=1, low=0)
        a.write(to_a)
        if to_d:
            d.write(to_d)
        if not self.ended:
            a.resume_reading()

    def _buffer_view(self) -> memoryview:
        return self._buffer.view

    def _count_d2a(self, n: int) -> None:
        self.bytes_d2a += n
        if self.watching:
            self.last_active = _now()

    def _count_a2d(self, n: int) -> None:
        self.bytes_a2d += n
        if self.watching:
            self.last_active = _now()

    # ----- ends (section 8)

    def side_ended(self, dialer_side: bool) -> bool:
        """One side's EOF while relaying; True if its conn stays open (half-closed).

        The first EOF is passed on as a half-close: closing both here (the reference's
        rule) made the server's kernel reset the partner if that partner's bytes were
        still unread at the server, and the reset threw away what the partner had not
        read yet of this side's stream: ``rdv dial < A`` exited 0 with its tail lost.
        """
        reason = "dialer EOF" if dialer_side else "accepter EOF"
        if self.ended:
            return False
        if self._first_eof:
            self.close(self._first_eof)  # both directions ended: the pair is done
            return False
        partner = (self.accepter if dialer_side else self.dialer).transport
        if not all(p.transport.can_write_eof() for p in (self.dialer, self.accepter)):
            self.close(reason)  # TLS: no half-close to pass on
            return False
        partner.write_eof()
        self._first_eof = reason
        self.watching = True
        self.touch()
        self._half_handle = self._loop.call_at(
            self.last_active + HALF_OPEN_QUIET_S, self._check_half_open
        )
        return True

    def _check_half_open(self) -> None:
        self._half_handle = None
        if self.ended:
            return
        held = sum(p.transport.get_write_buffer_size() for p in (self.dialer, self.accepter))
        deadline = self.last_active + HALF_OPEN_QUIET_S
        if not held and self._loop.time() >= deadline:
            self.close(f"{self._first_eof}, then quiet for {HALF_OPEN_QUIET_S:g} s")
            return
        if held:  # a paused reader: look again later, it is not quiet
            deadline = self._loop.time() + HALF_OPEN_QUIET_S
        self._half_handle = self._loop.call_at(deadline, self._check_half_open)

    def _on_accepter_early(self, data: bytes) -> None:
        # TLS transports can deliver already-decrypted bytes after pause_reading().
        self._a_early += data
        if len(self._a_early) > wire.MAX_LINE:
            self.close("accepter sent data before CONTINUE")

    # ----- idle timeout

    def touch(self) -> None:
        """Record activity (for the idle timeout and a half-open pair's quiet)."""
        if self.watching:
            self.last_active = self._loop.time()

    def _check_idle(self) -> None:
        self._idle_handle = None
        if self.ended or self._idle_timeout is None:
            return
        deadline = self.last_active + self._idle_timeout
        if self._loop.time() >= deadline:
            self.close("idle timeout", reset=True)  # the end is ours, not a peer's
        else:
            self._idle_handle = self._loop.call_at(deadline, self._check_idle)

    # ----- called by the protocols

    def _lost(self, peer: Peer, exc: BaseException | None) -> None:
        peer.lost(exc)
        if not self.ended:
            who = "dialer" if peer is self.dialer else "accepter"
            # A relayed conn's reset (or error) is passed on as a reset: as a FIN it read
            # as the end of the stream, and a receiver whose sender was killed (``kill
            # -9``, its socket set to reset) exited 0 with a cut copy (section 8).
            reset = exc is not None and self.path is PairPath.RELAYED
            self.close(f"{who} {'error: ' + str(exc) if exc else 'closed'}", reset=reset)


#: The clock of the byte counters' activity stamp: they also run in a relay thread
#: (:mod:`._splice_thread`), where ``loop.time()`` is not safe on uvloop (it updates
#: libuv's cached clock, a store racing the loop's own). It is the clock both loops read
#: (CLOCK_MONOTONIC: asyncio's ``time()`` is this function; uvloop's is libuv's cached
#: reading of it, at most a few ms behind), so the idle and quiet deadlines computed
#: from it against ``loop.time()`` are late by at most that.
_now: Final = time.monotonic


def _close_flushing(transport: asyncio.BaseTransport) -> None:
    """Close a transport after it sends what it holds, but never wait forever for that."""
    if transport.is_closing():
        return
    transport = cast(asyncio.WriteTransport, transport)
    pending = transport.get_write_buffer_size()
    transport.close()
    if pending:
        asyncio.get_running_loop().call_later(CLOSE_LINGER_S, transport.abort)


def _reset(transport: asyncio.BaseTransport) -> None:
    """Close a transport at once with a TCP RST (``SO_LINGER`` 0), dropping what it holds
    (``abort()`` alone sends a ``FIN`` when the socket's receive queue is empty)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Closed already, or not a TCP socket: the abort below is then all we can do.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    cast(asyncio.Transport, transport).abort()


#: ``struct linger {l_onoff = 1, l_linger = 0}``: close() sends RST.
_LINGER_RESET: Final = struct.pack("ii", 1, 0)


class _CommandReader(asyncio.Protocol):
    """D's conn between the ``101`` and its command line."""

    __slots__ = ("_lines", "_relayer")

    def __init__(self, relayer: Relayer) -> None:
        self._relayer = relayer
        self._lines = LineBuffer()

    def data_received(self, data: bytes) -> None:
        relayer = self._relayer
        if relayer.ended:
            return
        relayer.touch()
        self._lines.feed(data)
        try:
            line = self._lines.next_line()
        except ProtocolError as exc:
            relayer.close(f"protocol error: {exc.message}")
            return
        if line is not None:
            relayer._on_command_line(line, self._lines.rest())

    def eof_received(self) -> bool:
        self._relayer.close("dialer closed before its command")
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._relayer._lost(self._relayer.dialer, exc)


class _Parked(asyncio.Protocol):
    """A's conn until CONTINUE (reading paused), or any conn being rejected."""

    __slots__ = ("_peer", "_relayer")

    def __init__(self, relayer: Relayer, peer: Peer) -> None:
        self._relayer = relayer
        self._peer = peer

    def data_received(self, data: bytes) -> None:
        if not self._relayer.ended:
            self._relayer._on_accepter_early(data)

    def eof_received(self) -> bool:
        # A's EOF before D's command usually means D is about to report OTHER: wait for it.
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._relayer._lost(self._peer, exc)
