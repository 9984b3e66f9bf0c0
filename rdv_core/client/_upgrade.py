"""Fast start's upgrade: from the relay to a direct path, in the background.

docs/PROTOCOL.md section 16. When both peers offered fast start, the dialer took the
relay at once and the application's bytes already flow (:mod:`rdv_core.faststart`).
This module then:

1. confirms fast start end to end: each side's first frame on the relay is its
   ``HELLO`` (our server passed the offers, but only the peer itself can confirm);
2. measures the relay's round trip (``PING``/``PONG``, :mod:`~rdv_core.client._relay_rtt`)
   and times a simultaneous open with it, as libp2p DCUtR does: the dialer sends
   ``SYNC``, waits half a round trip and dials; the accepter dials the moment ``SYNC``
   arrives, so both SYNs leave at about the same time. The dials are an ordinary race
   (:class:`Race`, no relay), with its redials and budget;
3. authenticates the winner with ``ATTACH`` (attempt and both HELLO nonces,
   :mod:`~rdv_core.client._attach`) and moves the stream onto it; the relay is closed
   once the direct path carried frames both ways (``relay_done``). One that dies or goes
   silent (:mod:`~rdv_core.client._silence`) first sends the stream back to the relay,
   with replay.

Attempts: :data:`QUICK_ATTEMPTS` at once (DCUtR: 97.6% of its successes on the first),
then one after each of :data:`LATER_ATTEMPTS` seconds (NATs change). The first and later
ones dial from the shared port P; each quick retry from a fresh port pair (``PORT``), so
that no failed draw's router state decides the next (docs/PROTOCOL.md section 16.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Final

from rdv_core.client._attach import exchange_attach
from rdv_core.client._budget import SynBudget
from rdv_core.client._conn import Conn, Meta
from rdv_core.client._fresh import Fresh, FreshPorts, Listen, sleep_until
from rdv_core.client._link import Link
from rdv_core.client._pickers import WaitForP2P
from rdv_core.client._race import Race
from rdv_core.client._relay_rtt import RelayRtt
from rdv_core.client._silence import watch
from rdv_core.client._sockets import local_port
from rdv_core.client._uplinks import Uplink
from rdv_core.errors import NoConnectionError, RdvProtocolError
from rdv_core.events import (
    Clock,
    Event,
    FastStartNegotiated,
    FirstByteReceived,
    RelayRetired,
    UpgradeAttempt,
    Upgraded,
    UpgradeFailed,
    UpgradeStarted,
)
from rdv_core.faststart import RELAY, Frame, Kind, MigratingStream
from rdv_core.faststart._frames import (
    NONCE_SIZE,
    attempt_frame,
    hello_frame,
    parse_hello,
    u64_frame,
)
from rdv_core.wire import DIAL, Addr, AddrSpace, Method, allows_any_direct, allows_direct

logger = logging.getLogger("rdv.client")

#: The peer's HELLO must arrive within this (it is sent right after ``CONTINUE``).
HELLO_TIMEOUT: Final = 10.0
#: Attempts right after the start, and the later ones (seconds after the start).
QUICK_ATTEMPTS: Final = 5
LATER_ATTEMPTS: Final = (30.0, 120.0)
#: The dialer's schedule numbers its attempts 1 to this, in order (16.5): the accepter
#: races only at a ``SYNC`` for the next of them. It raced at every ``SYNC``, and a hostile
#: dialer writing one every 10 ms (attempt numbers 1 to 250 and round again) had it race
#: 11,008 times in 130 s: within the session's SYN budget, but a race's CPU and events each.
SCHEDULED_ATTEMPTS: Final = QUICK_ATTEMPTS + len(LATER_ATTEMPTS)
#: How long the dialer's race of one attempt waits for a direct conn: long enough for
#: redials against resetting routers (docs/LAB-NOTES.md section 7), a few relay RTTs
#: on slow paths.
ATTEMPT_WINDOW: Final = 1.0
ATTEMPT_RTT_FACTOR: Final = 8
#: The accepter gives up an attempt the dialer never ends (it normally sends ABORT).
ACCEPTER_ATTEMPT_TIMEOUT: Final = 15.0
#: The background work (events, the dialer's PINGs and race) waits for the first bytes
#: (the dialer's first write out, the accepter's first read in), at most this long
#: after the peer's HELLO: the first byte goes first (docs/PROTOCOL.md 16.2), and an
#: application that does not write at once still gets its upgrade.
FIRST_WRITE_GRACE: Final = 0.02


class Upgrader:
    """Runs fast start for one conn (see the module docstring)."""

    def __init__(
        self,
        *,
        method: Method,
        token: str,
        spaces: AddrSpace,
        port: int,
        peer_addrs: Sequence[Addr],
        relay: Link,
        listeners: list[socket.socket],
        listen: Listen,
        clock: Clock,
        emit: Callable[[Event], None],
        new_id: Callable[[], int],
        budget: Callable[[], SynBudget] = SynBudget,
        prefix: bytes = b"",
        first_data: bytes = b"",
        held: Sequence[Event] | None = None,
    ) -> None:
        self.method = method
        self._budget = budget
        self._token = token
        self._spaces = spaces
        self._port = port
        self._peer_addrs = tuple(peer_addrs)
        self._relay = relay
        self._listeners = listeners  # the first attempt takes them over
        self._listen = listen
        self._clock = clock
        self._emit_now = emit
        self._new_id = new_id
        self._nonce = os.urandom(NONCE_SIZE)
        self._uplinks: tuple[Uplink, ...] = ()
        self._bound_only = False
        self._nat64: ipaddress.IPv6Network | None = None
        self._session_id = b""
        self._picked_at = clock()
        self._switched_at: float | None = None
        self._rtt = RelayRtt(lambda raw: self.stream.send_control(RELAY, raw), clock)
        self._fresh = FreshPorts(listen, lambda raw: self.stream.send_control(RELAY, raw))
        self._attempt_tasks: dict[int, asyncio.Task[None]] = {}
        #: Accepter: the last attempt a ``SYNC`` started, and whether one out of the
        #: schedule was said already (once: the peer chooses how many it writes).
        self._last_sync = 0
        self._sync_refused = False
        self._settled = asyncio.Event()
        #: Set once the path is known for now: the relay retired, or the quick attempts
        #: are over (the doctor's verdict waits for it: docs/PROTOCOL.md section 16.5).
        self.quick_done = asyncio.Event()
        self._ended: set[int] = set()  # accepter: attempts that ended without a path
        self._direct_pid: int | None = None  # the direct path our stream moved to
        self._recv_direct = False  # the peer's stream came on it (it read our SWITCH)
        self.conn: Conn | None = None
        self.direct = asyncio.Event()  #: set once the relay is retired
        #: The accepter's events of the 101, and its FirstByteReceived, held until the
        #: pick has handed the first bytes over (:func:`start_fast`); None: emit at once.
        self.held: list[Event] | None = list(held) if held is not None else None
        role = b"D" if self.is_dialer else b"A"
        hello = hello_frame(role, self._nonce)
        self.stream = MigratingStream(
            relay.reader,
            relay.writer,
            # The dialer's CONTINUE (``prefix``) and HELLO leave in one write: one segment,
            # right behind which the application's first bytes follow. The accepter's
            # HELLO goes from the relay's writer task, still its first frame: the dialer's
            # first bytes, there already, are handed over first (docs/PROTOCOL.md 16.9).
            first_frames=(prefix + hello,) if self.is_dialer else (),
            first_data=first_data,  # the application's first bytes, in the same write
            on_control=self._on_control,
            on_path_lost=self._on_path_lost,
            on_relay_done=self._on_relay_done,
            on_moved=self._on_moved,
            on_first_data=lambda pid: self._emit(FirstByteReceived(self._clock(), pid == RELAY)),
        )
        if not self.is_dialer:
            self.stream.send_control(RELAY, hello)
        self.stream.spawn(self._run())

    def _emit(self, event: Event) -> None:
        if self.held is not None:
            self.held.append(event)
        else:
            self._emit_now(event)

    def release_held(self) -> None:
        """Write the events held while the first bytes went first (:attr:`held`)."""
        held, self.held = self.held, None
        for event in held or ():
            self._emit_now(event)

    def routes(
        self, uplinks: Sequence[Uplink], bound_only: bool, nat64: ipaddress.IPv6Network | None
    ) -> None:
        """The ways out the first race had (extra uplinks, NAT64): every attempt uses them
        (docs/LAB-NOTES.md section 13)."""
        self._uplinks, self._bound_only, self._nat64 = tuple(uplinks), bound_only, nat64

    def make_conn(self, meta: Meta, events: list[Event]) -> Conn:
        """The application's conn: on the relay now; it follows the switch."""
        self.conn = Conn(
            reader=self.stream.reader,
            writer=self.stream.writer,
            is_relay=True,
            local_addr=self._relay.local,
            remote_addr=self._relay.remote,
            meta=meta,
            events=events,
            elapsed_s=self._picked_at,
            upgrader=self,
        )
        return self.conn

    @property
    def is_dialer(self) -> bool:
        return self.method == DIAL

    def _close_listeners(self) -> None:
        for sock in self._listeners:
            sock.close()
        self._listeners = []

    # ----- the whole upgrade

    async def _run(self) -> None:
        try:
            try:
                async with asyncio.timeout(HELLO_TIMEOUT):
                    frame = await self.stream.first_relay_frame()
                role, nonce = parse_hello(frame)
                if role != (b"A" if self.is_dialer else b"D"):
                    raise RdvProtocolError("the peer's HELLO names the wrong role")
            except (RdvProtocolError, TimeoutError, ConnectionError) as exc:
                reason = str(exc) or "the peer's HELLO did not arrive"
                self._close_listeners()
                self._emit(UpgradeFailed(self._clock(), 0, reason, True))
                self.quick_done.set()
                self.stream.fail(RdvProtocolError(f"fast start: {reason}"))
                return
            ids = (self._nonce, nonce) if self.is_dialer else (nonce, self._nonce)
            self._session_id = ids[0] + ids[1]
            # The dialer's first write, the accepter's first read (which comes with the
            # HELLO) go first; the events and the attempts after them.
            first = self.stream.first_write if self.is_dialer else self.stream.first_read
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_WRITE_GRACE):
                    await first.wait()
            origin = getattr(self._clock, "start", None)
            self._emit(FastStartNegotiated(self._clock(), True, origin))
            dialable = [a for a in self._peer_addrs if allows_direct(self._spaces, a.space)]
            self._emit(UpgradeStarted(self._clock(), tuple(str(a) for a in self._peer_addrs)))
            if not dialable and not self._listeners:
                self._emit(UpgradeFailed(self._clock(), 0, "no direct candidate", True))
                self.quick_done.set()
                return
            if self.is_dialer:
                await self._dialer_attempts()
            else:
                await asyncio.Event().wait()  # until the stream ends: then reap below
        finally:
            self._close_listeners()
            self._fresh.close()

    async def _dialer_attempts(self) -> None:
        schedule = [0.0] * QUICK_ATTEMPTS + list(LATER_ATTEMPTS)
        started = self._clock()
        for attempt, at in enumerate(schedule, 1):
            final = attempt == len(schedule)
            wait = at - (self._clock() - started)
            if wait > 0:
                await asyncio.sleep(wait)
            if not self.stream.core.alive(RELAY) or self.stream.closing:
                return
            reason = await self._dialer_attempt(attempt)
            if reason is None:
                await self._settled.wait()
                if self.direct.is_set():
                    return
                self._settled.clear()
                continue
            self._emit(UpgradeFailed(self._clock(), attempt, reason, final))
            if attempt >= QUICK_ATTEMPTS:
                self.quick_done.set()

    async def _dialer_attempt(self, attempt: int) -> str | None:
        """One timed attempt; None when a direct path was attached, else why not."""
        fresh: Fresh | None = None
        if 1 < attempt <= QUICK_ATTEMPTS:
            pair = await self._fresh.offer(attempt)
            if isinstance(pair, str):
                self.stream.send_control(RELAY, attempt_frame(Kind.ABORT, attempt))
                return pair
            fresh = pair
        rtt = await self._rtt.least()
        self.stream.send_control(RELAY, attempt_frame(Kind.SYNC, attempt))
        # Let the relay's writer put SYNC on the wire before we wait: the wait's last
        # stretch spins without yielding to the event loop.
        await asyncio.sleep(0)
        synced = time.perf_counter()
        if rtt is not None:
            # SYNC takes about half a round trip to reach the peer, which dials at once.
            await sleep_until(synced + rtt / 2)
        # Emitted after the wait, as the accepter emits its own right after SYNC arrived:
        # writing an event costs up to a millisecond (a JSONL line), which at zero delay
        # between two resetting routers is longer than the whole burst of SYNs that must
        # overlap the peer's (measured in the lab's cone-rst, docs/LAB-NOTES.md 11).
        self._emit(UpgradeAttempt(self._clock(), attempt, rtt))
        window = max(ATTEMPT_WINDOW, ATTEMPT_RTT_FACTOR * (rtt or 0.0))
        try:
            link = await self._race(WaitForP2P(window), rtt, fresh)
        except (NoConnectionError, OSError) as exc:
            self.stream.send_control(RELAY, attempt_frame(Kind.ABORT, attempt))
            return _describe(exc)
        failure = await self._attach(attempt, link, rtt)
        if failure is not None:
            self.stream.send_control(RELAY, attempt_frame(Kind.ABORT, attempt))
        return failure

    async def _accepter_attempt(self, attempt: int, fresh: Fresh | None) -> None:
        self._emit(UpgradeAttempt(self._clock(), attempt, None))
        try:
            async with asyncio.timeout(ACCEPTER_ATTEMPT_TIMEOUT):
                link = await self._race(WaitForP2P(ATTEMPT_WINDOW), None, fresh)
        except asyncio.CancelledError:
            self._emit(UpgradeFailed(self._clock(), attempt, "the dialer ended the attempt", False))
            self._attempt_ended(attempt)
            raise
        except (NoConnectionError, OSError) as exc:
            self._emit(UpgradeFailed(self._clock(), attempt, _describe(exc), False))
            self._attempt_ended(attempt)
            return
        failure = await self._attach(attempt, link)
        if failure is not None:
            self._emit(UpgradeFailed(self._clock(), attempt, failure, False))
            self._attempt_ended(attempt)

    def _attempt_ended(self, attempt: int) -> None:
        """Accepter: once the dialer's quick attempts all ended, the path is known."""
        self._ended.add(attempt)
        if len(self._ended & set(range(1, QUICK_ATTEMPTS + 1))) >= QUICK_ATTEMPTS:
            self.quick_done.set()

    async def _race(self, picker: WaitForP2P, rtt: float | None, fresh: Fresh | None) -> Link:
        port, peer_addrs = self._port, self._peer_addrs
        if fresh is not None:
            # A fresh port pair: ours from our new listeners, the peer's announced; the
            # addresses are the 101's (a port-preserving NAT maps the new port to itself).
            listeners, peer_port = fresh
            port = local_port(listeners[0])
            peer_addrs = tuple(dataclasses.replace(a, port=peer_port) for a in peer_addrs)
        else:
            listeners, self._listeners = self._listeners, []
            if not listeners and allows_any_direct(self._spaces):
                listeners = self._listen(self._port)
        race = Race(
            method=self.method,
            token=self._token,
            spaces=self._spaces,
            picker=picker,
            listeners=listeners,
            port=port,
            peer_addrs=peer_addrs,
            relay=None,
            clock=self._clock,
            emit=self._emit,
            new_id=self._new_id,
            # A fresh budget per attempt over the client's address history: addresses
            # that failed get half as many SYNs each time (docs/PROTOCOL.md 16.5).
            budget=self._budget(),
            uplinks=self._uplinks,
            bound_only=self._bound_only,
            nat64=self._nat64,
            rtt_hint=rtt,
        )
        return await race.run()

    async def _attach(self, attempt: int, link: Link, rtt: float | None = None) -> str | None:
        """ATTACH both ways on a new direct conn, then move our stream onto it."""
        try:
            await exchange_attach(link, attempt, self._session_id)
        except (OSError, EOFError, RdvProtocolError, ValueError) as exc:
            link.close()
            self.stream.core.path_lost(attempt)
            return f"the direct conn did not attach: {_describe(exc)}"
        if self.stream.closing:
            link.close()
            return "the stream is closing"
        self._direct_pid = attempt  # (the peer's SWITCH to it may have come first)
        self._recv_direct = self.stream.core.recv_path == attempt
        self.stream.add_path(attempt, link.reader, link.writer)
        self.stream.switch_to(attempt)
        watch(self.stream, attempt, link.writer.get_extra_info("socket"), rtt)  # 16.10
        now = self._clock()
        self._switched_at = now
        if self.conn is not None:
            self.conn.is_relay = False
            self.conn.local_addr = link.local
            self.conn.remote_addr = link.remote
        self._emit(Upgraded(now, link.candidate, str(link.remote), now - self._picked_at, attempt))
        return None

    # ----- steering frames

    def _on_control(self, pid: int, frame: Frame) -> None:
        if frame.kind == Kind.PING:
            self.stream.send_control(pid, u64_frame(Kind.PONG, frame.value))
        elif frame.kind == Kind.PONG:
            self._rtt.on_pong(frame.value)
        elif frame.kind == Kind.SYNC and not self.is_dialer and pid == RELAY:
            if not self._last_sync < frame.value <= SCHEDULED_ATTEMPTS:
                self._refuse_sync(frame.value)
                return
            self._last_sync = frame.value
            for task in self._attempt_tasks.values():
                task.cancel()
            attempt = frame.value
            fresh = self._fresh.take(attempt)
            self._attempt_tasks[attempt] = self.stream.spawn(self._accepter_attempt(attempt, fresh))
        elif frame.kind == Kind.PORT and pid == RELAY and self.is_dialer:
            self._fresh.on_answer(frame.value, frame.path)
        elif frame.kind == Kind.PORT and pid == RELAY:
            # Fresh ports serve the quick retries only (16.5): a peer writing PORT(255)
            # down to PORT(1) had us hold 255 listener pairs, about 510 fds.
            wanted = self._last_sync < frame.value <= QUICK_ATTEMPTS
            direct = wanted and allows_any_direct(self._spaces)
            self._fresh.on_offer(frame.value, frame.path, direct_allowed=direct)
        elif frame.kind == Kind.ABORT and not self.is_dialer:
            running = self._attempt_tasks.pop(frame.value, None)
            if running is not None:
                running.cancel()
            self._fresh.drop(frame.value)
            self._attempt_ended(frame.value)
            self.stream.close_path(frame.value, "the dialer ended the attempt")
        else:
            logger.debug("fast start: ignoring %s on path %d", frame.kind.name, pid)

    def _refuse_sync(self, attempt: int) -> None:
        """Accepter: a ``SYNC`` for no attempt of the dialer's schedule (16.5)."""
        self._fresh.drop(attempt)  # its fresh pair, if the peer offered one: fds freed
        if not self._sync_refused:
            self._sync_refused = True
            reason = (
                f"the peer asked for attempt {attempt} after attempt {self._last_sync}, outside"
                f" the schedule of {SCHEDULED_ATTEMPTS} attempts: ignored, as are later ones"
            )
            self._emit(UpgradeFailed(self._clock(), attempt, reason, False))
        logger.debug("fast start: ignoring SYNC(%d) after SYNC(%d)", attempt, self._last_sync)

    def _on_path_lost(self, pid: int, reason: str) -> None:
        core = self.stream.core
        if pid == RELAY:
            if core.send_path != RELAY and core.recv_path != RELAY:
                self._retire()
            return
        if self.direct.is_set() or pid != self._direct_pid:
            # Retired: the stream reports the loss (no path left). Another pid: a path
            # the stream left already, whose loss says nothing of where the stream is.
            return
        self._direct_pid = None
        self._settled.set()
        if not core.alive(RELAY):
            return  # no path left: the stream reports it
        if self.conn is not None:
            self.conn.is_relay = True
        if core.eof and core.peer_eof:
            return  # both directions ended: the paths close with the conn
        # Back on the relay (replayed from the last ACK): whoever printed the switch
        # prints the way back (docs/PROTOCOL.md 16.6).
        reason = f"the direct path died before it was proven: {reason}"
        self._emit(UpgradeFailed(self._clock(), pid, reason, False, back_on_relay=True))

    def _on_moved(self, send: int, recv: int) -> None:
        """The peer went back to the relay (a RESUME there, or its frames there again:
        it lost the path) while our end of it lives: close ours too, so both sides know
        where the stream is and the dialer goes on; the loss is reported as any other."""
        pid = self._direct_pid
        if pid is None or self.direct.is_set() or not self.stream.core.alive(pid):
            return
        if send == RELAY or (recv == RELAY and self._recv_direct):
            self.stream.close_path(pid, "the peer went back to the relay")
        else:
            self._recv_direct = recv == pid

    def _on_relay_done(self) -> None:
        self.stream.close_path(RELAY, "retired: the direct path carried data both ways")

    def _retire(self) -> None:
        if self.direct.is_set():
            return
        self.stream.core.retain = False
        self.direct.set()
        self._settled.set()
        self.quick_done.set()
        since = self._clock() - (self._switched_at or self._picked_at)
        self._emit(RelayRetired(self._clock(), since))


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
