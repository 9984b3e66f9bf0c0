"""The line exchange on every direct conn of a race, run by reader callbacks, not tasks.

What is exchanged is the race's (docs/PROTOCOL.md sections 6, 7 and 11): the header lines
``rdv/1 <METHOD> <token>`` (the side that called ``connect()`` writes first; the side that
got the conn from ``accept()`` checks the peer's line before it answers, so a stranger
learns nothing), then on the accepter the dialer's command line (``CONTINUE`` makes the
conn the winner). The conns are bare sockets (client/_direct.py).

Why callbacks: a task per conn cost a task, a future and two event-loop turns each time a
line arrived (the reader callback wakes the future, the future wakes the task), and the
race had to wait one more turn for every cancelled task before it could return. Here the
line is read, checked and answered inside the loop's reader callback, and ending the race
is a synchronous ``remove_reader`` plus ``close`` (bench/connect.py: phases race and return).
The events are those the tasks emitted, in the same order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from rdv_core.client._direct import HANDSHAKE_TIMEOUT, DirectConn
from rdv_core.client._failures import classify
from rdv_core.client._link import PeerClosed
from rdv_core.events import (
    CandidateFailed,
    Clock,
    Discarded,
    Event,
    HandshakeFailed,
    HandshakeOk,
)
from rdv_core.wire import DIAL, Continue, Method, ProtocolError, check_header_line, parse_command

logger = logging.getLogger("rdv.client")

#: The phases of one conn: its header line is awaited, then (accepter) its command.
HEADER: Final = "header"
COMMAND: Final = "command"


@dataclass(eq=False, slots=True)
class _Watched:
    conn: DirectConn
    outbound: bool
    phase: str = HEADER
    timer: asyncio.TimerHandle | None = None
    fd: int = field(default=-1)


class Exchanges:
    """The exchanges of one race. The race is told of each outcome through its callbacks.

    Args:
        method, token, header: ours (the header line is built once by the race).
        clock, emit, fail: the race's clock, event sink and cause log.
        on_ok: a conn's header lines checked out (the race offers it, dialer).
        on_won: the accepter got ``CONTINUE`` on this conn.
        on_end: a conn left the exchange for good (failed, closed, handed over as ok
            on the dialer, or its command came): the race uncounts it.
        crash: an unexpected error in a callback (a bug): the race ends with it.
        loop: the running loop, if the caller has it at hand.
    """

    def __init__(
        self,
        *,
        method: Method,
        token: str,
        header: bytes,
        clock: Clock,
        emit: Callable[[Event], None],
        fail: Callable[[str], None],
        on_ok: Callable[[DirectConn], None],
        on_won: Callable[[DirectConn], None],
        on_end: Callable[[DirectConn], None],
        crash: Callable[[BaseException], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._method, self._token, self._header = method, token, header
        self._clock, self._emit, self._fail = clock, emit, fail
        self._on_ok, self._on_won, self._on_end, self._crash = on_ok, on_won, on_end, crash
        # The race passes its loop: asking for the running one is a getpid() each time.
        self._loop = loop or asyncio.get_running_loop()
        self._watched: dict[DirectConn, _Watched] = {}
        #: Conns whose header lines checked out and are still held (the race's cleanup
        #: emits ``Discarded`` for them); the race adds and removes its own too.
        self.ready: set[DirectConn] = set()

    def start(self, conn: DirectConn, outbound: bool) -> None:
        """Take ``conn`` into the exchange: write our line first if we connected."""
        watched = _Watched(conn, outbound)
        self._watched[conn] = watched
        if outbound:
            try:
                conn.send(self._header)
            except OSError as exc:
                self._header_failed(watched, exc)
                return
        if conn.answered:  # the accept loop answered a line that was already here
            self._header_ok(watched)
            return
        if conn.early is not None:  # a line that was already here but did not check out
            self._header_line(watched, conn.early)
            return
        watched.fd = conn.sock.fileno()
        watched.timer = self._loop.call_later(HANDSHAKE_TIMEOUT, self._timed_out, watched)
        self._loop.add_reader(watched.fd, self._readable, watched)

    def cancel_all(self) -> None:
        """The race ended: conns still in their header exchange fail as ``cancelled``."""
        for watched in list(self._watched.values()):
            self._unwatch(watched)
            if watched.phase == HEADER:
                candidate = watched.conn.candidate
                self._emit(HandshakeFailed(self._clock(), candidate, "cancelled", "the race ended"))
            self._on_end(watched.conn)

    # ----- the callbacks

    def _readable(self, watched: _Watched) -> None:
        if watched.conn.held_by is not None:
            # Held for the picker (_header_ok): what came waits in the kernel for the
            # winner's stream; stop being told of it.
            watched.conn.drop_reader()
            return
        try:
            while watched.conn in self._watched:
                line = watched.conn.take_line()
                if line is None:
                    return
                if watched.phase == HEADER:
                    self._header_line(watched, line)
                else:
                    self._command_line(watched, line)
        except (OSError, EOFError, ProtocolError) as exc:
            if watched.phase == HEADER:
                self._header_failed(watched, exc)
            else:
                self._command_failed(watched, exc)
        except Exception as exc:  # a bug: end the race with it, not a log line
            self._unwatch(watched)
            self._crash(exc)

    def _timed_out(self, watched: _Watched) -> None:
        self._header_failed(watched, TimeoutError())

    # ----- the header lines

    def _header_line(self, watched: _Watched, line: bytes) -> None:
        """Check the peer's line; if we accepted the conn, answer it (raises as ``_readable``)."""
        try:
            check_header_line(line, self._method, self._token)
            if not watched.outbound:
                watched.conn.send(self._header)
        except (OSError, ProtocolError) as exc:
            self._header_failed(watched, exc)
            return
        self._header_ok(watched)

    def _header_ok(self, watched: _Watched) -> None:
        conn = watched.conn
        if watched.timer is not None:
            watched.timer.cancel()
            watched.timer = None
        self.ready.add(conn)
        self._emit(HandshakeOk(self._clock(), conn.candidate))
        if self._method == DIAL:
            # The dialer's part ends here: the picker decides (the bytes stay in the socket).
            # The reader stays registered for the winner's transport (DirectConn.hold_reader).
            if watched.fd >= 0:
                conn.hold_reader(self._loop)
                watched.fd = -1
            self._unwatch(watched)
            self._on_ok(conn)
            self._on_end(conn)
            return
        watched.phase = COMMAND
        if watched.fd < 0:  # answered at accept time: start reading the command now
            watched.fd = conn.sock.fileno()
            self._loop.add_reader(watched.fd, self._readable, watched)
        self._on_ok(conn)

    def _header_failed(self, watched: _Watched, exc: BaseException) -> None:
        # TimeoutError is an OSError: our HANDSHAKE_TIMEOUT lands here too.
        self._unwatch(watched)
        conn = watched.conn
        reason, _ = classify(exc)
        detail = str(exc) or f"no header line within {HANDSHAKE_TIMEOUT:g}s"
        self._emit(HandshakeFailed(self._clock(), conn.candidate, reason, detail))
        self._fail(f"{conn.candidate.addr}: {reason}")
        conn.close()
        self._on_end(conn)

    # ----- the accepter: the dialer's command

    def _command_line(self, watched: _Watched, line: bytes) -> None:
        conn = watched.conn
        command = parse_command(line)
        self._unwatch(watched)
        if isinstance(command, Continue):
            self._on_won(conn)
        else:
            self.ready.discard(conn)
            conn.close()
            self._emit(
                CandidateFailed(
                    self._clock(), conn.candidate, "protocol", None, "OTHER on a direct conn"
                )
            )
        self._on_end(conn)

    def _command_failed(self, watched: _Watched, exc: BaseException) -> None:
        self._unwatch(watched)
        conn = watched.conn
        self.ready.discard(conn)
        conn.close()
        if isinstance(exc, PeerClosed):
            self._emit(Discarded(self._clock(), conn.candidate, "the dialer picked another conn"))
        else:
            reason, code = classify(exc)
            self._emit(CandidateFailed(self._clock(), conn.candidate, reason, code, str(exc)))
            self._fail(f"{conn.candidate.addr}: {reason}")
        self._on_end(conn)

    def _unwatch(self, watched: _Watched) -> None:
        if self._watched.pop(watched.conn, None) is None:
            return
        if watched.timer is not None:
            watched.timer.cancel()
            watched.timer = None
        if watched.fd >= 0:
            self._loop.remove_reader(watched.fd)
            watched.fd = -1
