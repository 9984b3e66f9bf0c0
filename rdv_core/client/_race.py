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
from typing import Any

from rdv_core.client._accepting import Acceptor
from rdv_core.client._budget import SynBudget
from rdv_core.client._candidates import DialRoute, new_candidate, plan_dials
from rdv_core.client._dialer import dial_candidate, link_rtt
from rdv_core.client._direct import DirectConn
from rdv_core.client._eager import start_now
from rdv_core.client._exchange import Exchanges
from rdv_core.client._failures import classify
from rdv_core.client._inbound import admit_inbound
from rdv_core.client._link import Link, addr_of
from rdv_core.client._loopback import LoopbackGate
from rdv_core.client._pickers import Offers, Picker
from rdv_core.client._race_dials import peer_may_be_queued, start_dials
from rdv_core.client._relay_role import (
    RELAY_CLOSED,
    RELAY_LET_GO,
    accepter_relay_command,
    watch_dialer_relay,
)
from rdv_core.client._uplinks import Uplink
from rdv_core.errors import NoConnectionError
from rdv_core.events import (
    Candidate,
    CandidateConnected,
    Clock,
    Discarded,
    Event,
    InboundAccepted,
    InboundRejected,
    Picked,
)
from rdv_core.wire import (
    CONTINUE_LINE,
    DIAL,
    Addr,
    AddrSpace,
    Method,
    build_header_line,
    build_other,
)

logger = logging.getLogger("rdv.client")


class Race:
    """One race between candidates; :meth:`run` returns the winning :class:`Link`.

    The race owns the listeners and the relay link it is given: whatever happens,
    everything but the winner is closed when :meth:`run` returns or raises.

    Only dials are tasks (a dial may wait and redial, client/_dialer.py); accepting and
    the line exchange on direct conns are reader callbacks (client/_exchange.py), so the
    race's end is synchronous, and :meth:`run` returns in the loop turn of the pick
    unless a dial is still under way (it is cancelled and awaited: its events come first).
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
        self._offers.lost_syns = self._budget  # the picker waits for a lost SYN (_pickers.py)
        self._links: list[Link | DirectConn] = []
        self._loop = asyncio.get_running_loop()
        self._exchanges = Exchanges(
            method=method,
            token=token,
            header=self._header,
            clock=clock,
            emit=emit,
            fail=self._fail,
            on_ok=self._handshake_ok,
            on_won=self._win,
            on_end=self._conn_done,
            crash=self._crash,
            loop=self._loop,
        )
        #: Every dial task still running; ``_dialing``: those not connected yet.
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialing: set[asyncio.Task[None]] = set()
        #: The relay's task (watching it, or reading its command): never awaited.
        self._side: set[asyncio.Task[None]] = set()
        self._acceptor: Acceptor | None = None
        self._accepted: set[Addr] = set()  # whence conns came (no dial there: _race_dials)
        self._gate: LoopbackGate | None = None
        self._live = 0
        self._relay_gone = relay is None
        self._starting = False
        self._causes: list[str] = []
        self._closing = False
        self._winner: Link | DirectConn | None = None
        # CONTINUE bytes the kernel did not take at once (the winner's stream sends them).
        self._unsent = b""
        self._opened: Link | None = None
        self._main: asyncio.Task[Any] | None = None
        self._crashed: BaseException | None = None
        self._outcome: asyncio.Future[Link | DirectConn | None] = self._loop.create_future()

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
        self._main = asyncio.current_task(self._loop)  # (no getpid() with the loop given)
        try:
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
            pending = self._halt()
            if winner is not None and winner is self._relay:
                # The dialer's relay watch is a read on the winner's own stream: it must
                # be gone before the application reads (the relay's tasks are not awaited
                # otherwise: they hold losers only).
                pending += [task for task in self._side if not task.done()]
            if pending:  # dials still under way (not on loopback): their events come first
                await asyncio.wait(pending)
            return await self._hand_over(winner)
        except BaseException as exc:
            # Cancelled (or broken), maybe after the pick: the winner goes too.
            if self._opened is not None:
                self._opened.close()
            elif self._winner is not None:
                self._winner.close()
            pending = self._halt()
            if pending:
                await asyncio.wait(pending)
            crashed = self._crashed
            if crashed is not None and isinstance(exc, asyncio.CancelledError):
                if self._main is not None:
                    self._main.uncancel()  # our own cancel (see _crash), not the caller's
                raise crashed from None
            raise
        finally:
            self._closing = True
            self._main = None
            self._cleanup()

    async def _hand_over(self, winner: Link | DirectConn | None) -> Link:
        """The winner as a stream (only the winner gets one, client/_direct.py)."""
        if winner is None:
            raise NoConnectionError("no conn to the peer could be used", tuple(self._causes))
        if isinstance(winner, Link):
            return winner
        try:
            link = winner.to_link_now(self._loop) or await winner.to_link()
        except OSError as exc:  # the socket is closed
            self._fail(f"{winner.candidate.addr}: {classify(exc)[0]}")
            raise NoConnectionError("the picked conn failed", tuple(self._causes)) from exc
        self._opened = link
        if self._unsent:
            link.writer.write(self._unsent)
        return link

    def _start(self) -> None:
        self._starting = True  # dials that end at once must not decide before all started
        self._acceptor = Acceptor(self._listeners, self._inbound, self._crash, self._loop)
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
        if not self.is_dialer and peer_may_be_queued(plan):  # client/_race_dials.py
            self._acceptor.accept_queued()
        dialable, self._gate = start_dials(
            plan, self._spawn_dial, self._emit, self._clock, self._accepted
        )
        if self._relay is not None:
            if self.is_dialer:
                self._offers.add(self._relay, is_relay=True)
                self._side_task(self._watch_dialer_relay(self._relay))
            else:
                self._side_task(self._accepter_relay(self._relay))
        if not self._listeners and not dialable:
            # Nothing direct can ever show up: don't make the picker wait for it.
            self._offers.set_exhausted()
        self._starting = False
        self._check_accepter_done()

    def _halt(self) -> list[asyncio.Task[None]]:
        """Stop everything but the winner, at once; the dial tasks that have yet to end.

        Idempotent. Handshakes under way end as ``cancelled`` here (client/_exchange.py).
        """
        self._closing = True
        self._stop_accepting()
        if self._gate is not None:
            self._gate.close()
        self._exchanges.cancel_all()
        for side in self._side:
            side.cancel()  # the relay is closed by the pick or the cleanup
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            task.cancel()
        return pending

    def _commit(self, winner: Link | DirectConn) -> None:
        """The dialer's pick on the wire (docs/PROTOCOL.md section 1, step 5)."""
        relay = self._relay
        if not winner.is_relay and relay is not None and relay.alive:
            # Tell the server we went direct (for its metrics), then let the relay go.
            relay.writer.write(build_other(winner.remote))
            relay.close()
            self._emit(Discarded(self._clock(), relay.candidate, RELAY_LET_GO))
        if isinstance(winner, Link):
            winner.writer.write(CONTINUE_LINE)
        else:
            self._unsent = winner.send_some(CONTINUE_LINE)

    def _cleanup(self) -> None:
        self._halt()
        for listener in self._listeners:
            listener.close()
        why = "another conn was picked" if self._winner else "the attempt ended without a conn"
        conns: list[Link | DirectConn] = [*self._links]
        if self._relay is not None:
            conns.append(self._relay)
        ready = self._exchanges.ready
        for link in conns:
            if link is self._winner:
                continue
            # The relay is on offer from the start: it always ends with an event, also
            # on the accepter, whose relay read is cancelled when a direct conn gets
            # CONTINUE first. So does every authenticated conn.
            if link in ready or (link.alive and link is self._relay):
                self._emit(Discarded(self._clock(), link.candidate, why))
            if link.alive:
                link.close()

    def _stop_accepting(self) -> None:
        if self._acceptor is not None:
            self._acceptor.stop()

    def _fail(self, text: str) -> None:
        self._causes.append(text)

    def _crash(self, exc: BaseException) -> None:
        """A bug in a task or callback: the race ends with it (as a TaskGroup would)."""
        if self._closing or self._main is None:
            logger.error("race: error after its end", exc_info=exc)
            return
        if self._crashed is None:
            self._crashed = exc
            self._main.cancel()

    # ----- dialing

    def _spawn_dial(
        self, candidate: Candidate, route: DialRoute, emit: Callable[[Event], None] | None = None
    ) -> None:
        # The first step now: on loopback the whole dial (client/_eager.py).
        try:
            task = start_now(self._dial(candidate, route, emit or self._emit))
        except Exception as exc:  # a bug, as a task's error would be (_dial_done)
            self._crash(exc)
            return
        if task is None:  # connected, skipped or failed already: nothing to wait for
            self._check_accepter_done()  # as _dial_done
            return
        self._tasks.add(task)
        self._dialing.add(task)
        task.add_done_callback(self._dial_done)

    def _dial_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._dialing.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._crash(exc)
        self._check_accepter_done()

    async def _dial(
        self, candidate: Candidate, route: DialRoute, emit: Callable[[Event], None]
    ) -> None:
        sock: socket.socket | None = None
        addr = route.target
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
                loop=self._loop,
            )
        finally:
            self._budget.finish(addr, connected=sock is not None)
        if sock is None:
            return
        # Connected: from now on this is a handshake, which a relay EOF must not cancel.
        current = asyncio.current_task(self._loop)
        if current is not None:
            self._dialing.discard(current)
        emit(CandidateConnected(self._clock(), candidate))
        self._live += 1
        # The peer's address as getpeername() names it (zone dropped, IPv4 unmapped).
        remote = addr_of(addr.sockaddr()) or addr
        self._begin(DirectConn.known(candidate, sock, remote), outbound=True)

    # ----- inbound conns (client/_accepting.py calls this)

    def _inbound(self, sock: socket.socket, sockaddr: Any) -> None:
        inbound = admit_inbound(sockaddr, self._spaces, self._peer_addrs, self._nat64)
        if inbound is None:  # not an IP socket address
            sock.close()
            return
        remote, rejected = inbound
        candidate = new_candidate(self._new_id(), remote, "inbound")
        if rejected is not None:
            sock.close()  # maybe a stranger who knows the token: see client/_inbound.py
            self._emit(InboundRejected(self._clock(), candidate, rejected))
            return
        self._emit(InboundAccepted(self._clock(), candidate))
        self._live += 1
        conn = DirectConn.known(candidate, sock, addr_of(sockaddr) or remote)
        self._accepted.add(conn.remote)
        # Checked and answered here when the peer's line is already in (client/_direct.py).
        conn.answer_now(self._header, self._method, self._token)
        self._begin(conn, outbound=False)

    # ----- direct conns: header lines, then (accepter) the command (client/_exchange.py)

    def _begin(self, conn: DirectConn, outbound: bool) -> None:
        """The caller has counted the conn in ``_live``; :meth:`_conn_done` uncounts it."""
        self._links.append(conn)
        self._offers.coming()  # the picker may wait for it (client/_pickers.py)
        self._exchanges.start(conn, outbound)

    def _handshake_ok(self, conn: DirectConn) -> None:
        if self.is_dialer:
            self._offers.add(conn, is_relay=False)

    def _conn_done(self, conn: DirectConn) -> None:
        self._offers.arrived()
        self._live -= 1
        self._check_accepter_done()

    # ----- the relay

    def _side_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._side.add(task)
        task.add_done_callback(self._side_done)

    def _side_done(self, task: asyncio.Task[None]) -> None:
        self._side.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._crash(exc)

    async def _watch_dialer_relay(self, relay: Link) -> None:
        reason = await watch_dialer_relay(relay, self._emit, self._clock)
        self._offers.withdraw(relay)
        self._fail(f"relay: {reason}")

    async def _accepter_relay(self, relay: Link) -> None:
        won, failure = await accepter_relay_command(relay, self._emit, self._clock)
        if won:
            self._win(relay)
            return
        # One cause per failed candidate, the relay's too: with no conn left, a bare
        # "no conn to the peer could be used" would not say that the dialer is gone.
        self._fail(f"relay: {failure if failure is not None else RELAY_CLOSED}")
        self._relay_gone = True
        # The dialer has picked (a direct conn we already hold) or is gone: dials and
        # inbound conns that are not authenticated yet can no longer be chosen.
        self._stop_accepting()
        if self._gate is not None:
            self._gate.close()
        for task in self._dialing:
            task.cancel()
        self._dialing.clear()
        self._check_accepter_done()

    # ----- the accepter's outcome

    def _win(self, link: Link | DirectConn) -> None:
        if not self._outcome.done():
            self._outcome.set_result(link)
        else:
            link.close()

    def _check_accepter_done(self) -> None:
        if self.is_dialer or self._starting or self._outcome.done() or not self._relay_gone:
            return
        accepting = self._acceptor is not None and self._acceptor.active
        if self._live == 0 and not self._dialing and not accepting:
            self._outcome.set_result(None)
