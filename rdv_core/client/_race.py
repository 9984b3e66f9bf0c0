"""The candidate race: from the server's ``101`` to the one conn that carries the data.

The algorithm (docs/PROTOCOL.md sections 6, 7 and 11, docs/ARCHITECTURE.md section 4)
-------------------------------------------------------------------------------------
Before the race, the client bound one local port P and listens on it; its server conn
(the future relay) also left from P. The server's ``101`` gave us the peer's candidate
addresses. Then, all at once:

* **Dial** every peer candidate whose address space is enabled, each from its own
  socket bound to P (SO_REUSEADDR + SO_REUSEPORT, made by :mod:`rdv_core.client._sockets`).
  Both peers do this at the same time, so through NATs many of these become TCP
  simultaneous opens: the outgoing SYN opens our NAT mapping for the peer's SYN.
* **Accept** on P. Inbound conns from a space that is not enabled, or from an IP that is
  none of the peer's addresses (:mod:`rdv_core.client._inbound`), are closed at once.
  A direct conn may surface from ``connect()`` *or* ``accept()``, and on loopback the
  same TCP conn is often both peers' outbound conn (a simultaneous open).
* **Authenticate** every direct conn with the header lines ``rdv/1 <METHOD> <token>``.
  The side that called ``connect()`` writes its line at once; the side that got the
  conn from ``accept()`` first reads and checks the peer's line, then answers. Every
  TCP conn has at least one connecting side, so this never deadlocks, and a stranger
  that connects to our listener learns nothing (the reference writes first on inbound
  conns too, which hands the token to whoever connects, who could echo it back and be
  picked). A wrong line is a misdial: that conn is closed.
* **Pick** (dialer): the relay is on offer right after the ``101``; each direct conn
  is offered once its lines checked out. The :class:`~rdv_core.client._pickers.Picker` chooses.
  For a direct pick we write ``OTHER <addr>`` on the relay and close it, then
  ``CONTINUE`` on the chosen conn; for the relay, ``CONTINUE`` on the relay.
* **Wait for CONTINUE** (accepter): read one command line on every authenticated
  direct conn and on the relay; the first ``CONTINUE`` wins. When the relay reaches EOF
  the dialer has picked (a direct conn we already hold) or is gone: new dials are then
  useless, so they stop, and the attempt fails if no held conn gets ``CONTINUE``.
* **Clean up**: the moment there is a winner every pending dial, handshake and accept
  is cancelled and every other conn (and the listener) is closed without further
  bytes. The same happens on failure and on cancellation: nothing leaks.

Where we do better than the reference (measured in the NAT lab, docs/LAB-NOTES.md section 7): how
one candidate is dialled (redial bursts against refusals and resets, unanswered SYNs
given up and sent again, ``EADDRNOTAVAIL``) is explained in :mod:`rdv_core.client._dialer`.
Every failure is classified (refused, reset, unreachable, timeout, misdial,
cancelled, ...) with its errno, as events (:mod:`rdv_core.client._failures`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

from rdv_core.client._budget import SynBudget
from rdv_core.client._candidates import DialRoute, new_candidate, plan_dials
from rdv_core.client._dialer import dial_candidate, link_rtt
from rdv_core.client._direct import HANDSHAKE_TIMEOUT, DirectConn
from rdv_core.client._failures import classify
from rdv_core.client._inbound import admit_inbound
from rdv_core.client._link import Link, PeerClosed, read_line
from rdv_core.client._loopback import LoopbackGate
from rdv_core.client._pickers import Offers, Picker
from rdv_core.client._relay_role import accepter_relay_command, watch_dialer_relay
from rdv_core.client._uplinks import Uplink
from rdv_core.errors import NoConnectionError
from rdv_core.events import (
    Candidate,
    CandidateConnected,
    CandidateFailed,
    CandidateSkipped,
    Clock,
    Discarded,
    Event,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    InboundRejected,
    Picked,
)
from rdv_core.wire import (
    CONTINUE_LINE,
    DIAL,
    Addr,
    AddrSpace,
    Continue,
    Method,
    ProtocolError,
    build_header_line,
    build_other,
    parse_command,
)

logger = logging.getLogger("rdv.client")

#: Pause after a failed ``accept()`` (EMFILE and friends) before accepting again, so a
#: persistent error does not spin the loop.
ACCEPT_ERROR_PAUSE: Final = 0.1


class Race:
    """One race between candidates; :meth:`run` returns the winning :class:`Link`.

    The race owns the listeners and the relay link it is given: whatever happens,
    everything but the winner is closed when :meth:`run` returns or raises.
    """

    def __init__(
        self,
        *,
        method: Method,
        token: str,
        spaces: AddrSpace,
        picker: Picker,
        listeners: Sequence[socket.socket],
        port: int,
        peer_addrs: Sequence[Addr],
        relay: Link | None,
        clock: Clock,
        emit: Callable[[Event], None],
        new_id: Callable[[], int],
        budget: SynBudget | None = None,
        uplinks: Sequence[Uplink] = (),
        bound_only: bool = False,
        nat64: ipaddress.IPv6Network | None = None,
        rtt_hint: float | None = None,
    ) -> None:
        # Extra ways out and NAT64 (docs/LAB-NOTES.md section 13; _candidates.dial_routes).
        self._uplinks, self._bound_only, self._nat64 = list(uplinks), bound_only, nat64
        self._method = method
        self._token = token
        self._spaces = spaces
        self._picker = picker
        self._listeners = list(listeners)
        self._port = port
        self._peer_addrs = list(peer_addrs)
        self._relay = relay
        # How long a round trip takes here, until a candidate's refusals tell better.
        # (Fast start passes the RTT it measured over the relay: docs/PROTOCOL.md 16.5.)
        self._rtt_hint = rtt_hint if rtt_hint is not None else link_rtt(relay)
        # Every SYN of every dial is drawn from here (docs/PROTOCOL.md section 11).
        self._budget = budget if budget is not None else SynBudget()
        self._clock = clock
        self._emit = emit
        self._new_id = new_id
        self._header = build_header_line(method, token)
        self._offers: Offers[Link | DirectConn] = Offers()
        self._offers.rtt_hint = self._rtt_hint
        self._links: list[Link | DirectConn] = []
        self._ready: set[Link | DirectConn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialing: set[asyncio.Task[None]] = set()
        self._accepting: set[asyncio.Task[None]] = set()
        self._live = 0
        self._unowned: set[socket.socket] = set()
        self._relay_gone = relay is None
        self._causes: list[str] = []
        self._closing = False
        self._winner: Link | DirectConn | None = None
        # CONTINUE bytes the kernel did not take at once (the winner's stream sends them).
        self._unsent = b""
        self._opened: Link | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._outcome: asyncio.Future[Link | DirectConn | None] = (
            asyncio.get_running_loop().create_future()
        )

    @property
    def is_dialer(self) -> bool:
        """True for the ``DIAL`` side, which picks."""
        return self._method == DIAL

    # ----- the race as a whole

    async def run(self) -> Link:
        """Race until a winner is chosen.

        Raises:
            NoConnectionError: when no conn can be used (the causes are attached).
        """
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._start()
                if self.is_dialer:
                    winner = await self._picker.pick(self._offers)
                else:
                    winner = await self._outcome
                self._closing = True
                self._winner = winner
                if winner is not None:
                    elapsed = self._clock()
                    self._emit(Picked(elapsed, winner.candidate, winner.is_relay, elapsed))
                    if self.is_dialer:
                        self._commit(winner)
                for task in self._tasks:
                    task.cancel()
                if isinstance(winner, DirectConn):
                    # Its stream opens in the loop turn the cancelled tasks end in.
                    tg.create_task(self._open(winner))
        except BaseException:
            # Cancelled (or broken) after the pick: the winner goes too.
            if self._opened is not None:
                self._opened.close()
            elif self._winner is not None:
                self._winner.close()
            raise
        finally:
            self._closing = True
            self._cleanup()
        winner = self._winner
        if winner is None:
            raise NoConnectionError("no conn to the peer could be used", tuple(self._causes))
        if isinstance(winner, Link):
            return winner
        link = self._opened
        if link is None:
            raise NoConnectionError("the picked conn failed", tuple(self._causes))
        if self._unsent:
            link.writer.write(self._unsent)
        return link

    async def _open(self, conn: DirectConn) -> None:
        """Only the winner of the race gets a stream (client/_direct.py)."""
        try:
            self._opened = await conn.to_link()
        except OSError as exc:  # to_link closed the socket
            self._fail(f"{conn.candidate.addr}: {classify(exc)[0]}")

    def _spawn(
        self, coro: Coroutine[Any, Any, None], group: set[asyncio.Task[None]] | None = None
    ) -> None:
        assert self._tg is not None
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if group is not None:
            group.add(task)
            task.add_done_callback(group.discard)

    def _start(self) -> None:
        for listener in self._listeners:
            self._spawn(self._accept_loop(listener), self._accepting)
        dialable = 0
        plan = list(
            plan_dials(
                self._peer_addrs,
                self._spaces,
                self._new_id,
                uplinks=self._uplinks,
                bound_only=self._bound_only,
                nat64=self._nat64,
            )
        )
        # ::1 waits for 127.0.0.1 (client/_loopback.py, docs/PROTOCOL.md section 11).
        spaces = {route.target.space for _, route, _ in plan if route is not None}
        both = {AddrSpace.LOOPBACK4, AddrSpace.LOOPBACK6} <= spaces
        gate = LoopbackGate() if both else None
        for candidate, route, skipped in plan:
            if route is None:
                self._emit(CandidateSkipped(self._clock(), candidate, skipped))
                continue
            dialable += 1
            self._spawn(self._dial(candidate, route, gate), self._dialing)
        if self._relay is not None:
            if self.is_dialer:
                self._offers.add(self._relay, is_relay=True)
                self._spawn(self._watch_dialer_relay(self._relay))
            else:
                self._spawn(self._accepter_relay(self._relay))
        if not self._listeners and not dialable:
            # Nothing direct can ever show up: don't make the picker wait for it.
            self._offers.set_exhausted()
        self._check_accepter_done()

    def _commit(self, winner: Link | DirectConn) -> None:
        """The dialer's pick on the wire (docs/PROTOCOL.md section 1, step 5)."""
        relay = self._relay
        if not winner.is_relay and relay is not None and relay.alive:
            # Tell the server we went direct (for its metrics), then let the relay go.
            relay.writer.write(build_other(winner.remote))
            relay.close()
            self._emit(
                Discarded(self._clock(), relay.candidate, "went direct: told the server OTHER")
            )
        if isinstance(winner, Link):
            winner.writer.write(CONTINUE_LINE)
        else:
            self._unsent = winner.send_some(CONTINUE_LINE)

    def _cleanup(self) -> None:
        for listener in self._listeners:
            listener.close()
        for sock in self._unowned:
            sock.close()
        why = "another conn was picked" if self._winner else "the attempt ended without a conn"
        conns: list[Link | DirectConn] = [*self._links]
        if self._relay is not None:
            conns.append(self._relay)
        for link in conns:
            if link is self._winner:
                continue
            # The relay is on offer from the start: it always ends with an event, also
            # on the accepter, whose relay read is cancelled when a direct conn gets
            # CONTINUE first. So does every authenticated conn, also one whose stream
            # was still opening (its socket is closed already then).
            ready = link in self._ready
            if ready or (link.alive and link is self._relay):
                self._emit(Discarded(self._clock(), link.candidate, why))
            if link.alive:
                link.close()

    def _fail(self, text: str) -> None:
        self._causes.append(text)

    # ----- dialing

    async def _dial(
        self, candidate: Candidate, route: DialRoute, gate: LoopbackGate | None = None
    ) -> None:
        sock: socket.socket | None = None
        addr = route.target
        emit = self._emit
        if gate is not None:
            gated = await gate.enter(candidate, addr, self._emit, self._clock)
            if gated is None:  # skipped: IPv4 loopback reached the peer
                return
            emit = gated
        try:
            sock = await dial_candidate(
                candidate,
                addr,
                via=route.uplink,
                port=self._port,
                rtt_hint=self._rtt_hint,
                budget=self._budget.for_addr(addr),
                clock=self._clock,
                emit=emit,
                fail=self._fail,
                preopen=not self.is_dialer,  # one side only: rdv_core.client._preopen
            )
        finally:
            self._budget.finish(addr, connected=sock is not None)
        if sock is None:
            return
        current = asyncio.current_task()
        if current is not None:
            # Connected: from now on this is a handshake, which a relay EOF must not cancel.
            self._dialing.discard(current)
        emit(CandidateConnected(self._clock(), candidate))
        self._live += 1
        await self._direct(candidate, sock, addr, outbound=True)

    # ----- accepting

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, sockaddr = await loop.sock_accept(listener)
            except OSError as exc:
                # ECONNABORTED and friends concern one half-made conn; EMFILE passes.
                logger.debug("accept failed: %s", exc)
                await asyncio.sleep(ACCEPT_ERROR_PAUSE)
                continue
            if self._closing:
                sock.close()
                continue
            inbound = admit_inbound(sockaddr, self._spaces, self._peer_addrs, self._nat64)
            if inbound is None:  # not an IP socket address
                sock.close()
                continue
            remote, rejected = inbound
            candidate = new_candidate(self._new_id(), remote, "inbound")
            if rejected is not None:
                sock.close()  # maybe a stranger who knows the token: see client/_inbound.py
                self._emit(InboundRejected(self._clock(), candidate, rejected))
                continue
            self._emit(InboundAccepted(self._clock(), candidate))
            # Counted and owned from now on: a task cancelled before its first step
            # never runs its body, so cleanup closes sockets no task has taken yet.
            self._live += 1
            self._unowned.add(sock)
            conn = DirectConn.of(candidate, sock, remote)
            conn.answer_now(self._header, self._method, self._token)
            self._spawn(self._direct(candidate, sock, remote, outbound=False, conn=conn))

    # ----- direct conns: header lines, then (accepter) the command

    async def _direct(
        self,
        candidate: Candidate,
        sock: socket.socket,
        addr: Addr,
        outbound: bool,
        conn: DirectConn | None = None,
    ) -> None:
        """Header lines on a direct conn, then (accepter) its command.

        The caller has counted the conn in ``_live``; this uncounts it when it ends.
        """
        self._unowned.discard(sock)
        conn = conn or DirectConn.of(candidate, sock, addr)
        self._links.append(conn)
        self._offers.coming()  # the picker may wait for it (client/_pickers.py)
        try:
            try:
                await conn.authenticate(self._header, self._method, self._token, outbound)
            except asyncio.CancelledError:
                self._emit(HandshakeFailed(self._clock(), candidate, "cancelled", "the race ended"))
                raise
            except (OSError, EOFError, ProtocolError) as exc:
                # TimeoutError is an OSError: our HANDSHAKE_TIMEOUT lands here too.
                reason, _ = classify(exc)
                detail = str(exc) or f"no header line within {HANDSHAKE_TIMEOUT:g}s"
                self._emit(HandshakeFailed(self._clock(), candidate, reason, detail))
                self._fail(f"{candidate.addr}: {reason}")
                conn.close()
                return
            self._ready.add(conn)
            self._emit(HandshakeOk(self._clock(), candidate))
            if self.is_dialer:
                self._offers.add(conn, is_relay=False)
                return
            await self._await_continue(conn)
        finally:
            self._offers.arrived()
            self._live -= 1
            self._check_accepter_done()

    async def _await_continue(self, conn: DirectConn) -> None:
        """Accepter: the first command on an authenticated direct conn.

        Its stream opens first, while the dialer picks: so ``CONTINUE`` finds it ready and
        the winner is returned without one more event-loop turn.
        """
        link: Link | DirectConn = conn
        try:
            link = await conn.to_link()
            self._links[self._links.index(conn)] = link
            self._ready.discard(conn)
            self._ready.add(link)
            command = parse_command(await read_line(link.reader))
        except PeerClosed:
            self._ready.discard(link)
            link.close()
            self._emit(Discarded(self._clock(), link.candidate, "the dialer picked another conn"))
            return
        except (OSError, ProtocolError) as exc:
            reason, code = classify(exc)
            self._ready.discard(link)
            link.close()
            self._emit(CandidateFailed(self._clock(), link.candidate, reason, code, str(exc)))
            self._fail(f"{link.candidate.addr}: {reason}")
            return
        if isinstance(command, Continue):
            self._win(link)
            return
        self._ready.discard(link)
        link.close()
        self._emit(
            CandidateFailed(
                self._clock(), link.candidate, "protocol", None, "OTHER on a direct conn"
            )
        )

    # ----- the relay

    async def _watch_dialer_relay(self, relay: Link) -> None:
        reason = await watch_dialer_relay(relay, self._emit, self._clock)
        self._offers.withdraw(relay)
        self._fail(f"relay: {reason}")

    async def _accepter_relay(self, relay: Link) -> None:
        won, failure = await accepter_relay_command(relay, self._emit, self._clock)
        if won:
            self._win(relay)
            return
        if failure is not None:
            self._fail(f"relay: {failure}")
        self._relay_gone = True
        # The dialer has picked (a direct conn we already hold) or is gone: dials and
        # inbound conns that are not authenticated yet can no longer be chosen.
        for task in [*self._dialing, *self._accepting]:
            task.cancel()
        self._dialing.clear()
        self._accepting.clear()
        self._check_accepter_done()

    # ----- the accepter's outcome

    def _win(self, link: Link | DirectConn) -> None:
        if not self._outcome.done():
            self._outcome.set_result(link)
        else:
            link.close()

    def _check_accepter_done(self) -> None:
        if self.is_dialer or self._outcome.done() or not self._relay_gone:
            return
        if self._live == 0 and not self._dialing and not self._accepting:
            self._outcome.set_result(None)
