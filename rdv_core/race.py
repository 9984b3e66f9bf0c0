"""The candidate race: from the server's ``101`` to the one conn that carries the data.

The algorithm (PROTOCOL.md sections 6 and 7, DESIGN.md section 4)
-----------------------------------------------------------------
Before the race, the client bound one local port P and listens on it; its server conn
(the future relay) also left from P. The server's ``101`` gave us the peer's candidate
addresses. Then, all at once:

* **Dial** every peer candidate whose address space is enabled, each from its own
  socket bound to P (SO_REUSEADDR + SO_REUSEPORT, made by :mod:`rdv_core.sockets`).
  Both peers do this at the same time, so through NATs many of these become TCP
  simultaneous opens: the outgoing SYN opens our NAT mapping for the peer's SYN.
* **Accept** on P. Inbound conns from a space that is not enabled are closed at once.
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
  is offered once its lines checked out. The :class:`~rdv_core.pickers.Picker` chooses.
  For a direct pick we write ``OTHER <addr>`` on the relay and close it, then
  ``CONTINUE`` on the chosen conn; for the relay, ``CONTINUE`` on the relay.
* **Wait for CONTINUE** (accepter): read one command line on every authenticated
  direct conn and on the relay; the first ``CONTINUE`` wins. When the relay reaches EOF
  the dialer has picked (a direct conn we already hold) or is gone: new dials are then
  useless, so they stop, and the attempt fails if no held conn gets ``CONTINUE``.
* **Clean up**: the moment there is a winner every pending dial, handshake and accept
  is cancelled and every other conn (and the listener) is closed without further
  bytes. The same happens on failure and on cancellation: nothing leaks.

Where we do better than the reference (measured in the NAT lab, LAB-NOTES.md):

* A dial to a public address that is refused or reset is redialled as soon as the
  reset arrives (at most every :data:`RETRY_INTERVAL`) until the race ends. Home
  routers answer a SYN that arrives before their own mapping exists with an RST, and
  that RST also erases the sender's mapping: the peer's SYN only gets through our NAT
  while one of our SYNs is in flight. A one-shot dial makes that a timing lottery;
  keeping a SYN in flight most of the time draws again and again (numbers at
  :data:`RETRY_INTERVAL`).
* A dial still waiting for its SYN-ACK is never closed and restarted (closing sends an
  RST that kills a half-open simultaneous open): the kernel retransmits SYNs itself.
* ``EADDRNOTAVAIL`` from ``connect()`` means the 4-tuple is already in use, i.e. the
  peer's SYN already reached our listener: that conn surfaces from ``accept()``, so
  the candidate is not a failure.
* Every failure is classified (refused, reset, unreachable, timeout, misdial,
  cancelled, ...) with its errno, as events.
"""

from __future__ import annotations

import asyncio
import errno as errno_codes
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rdv_core.addrs import Addr, AddrSpace, format_spaces
from rdv_core.errors import NoConnectionError
from rdv_core.events import (
    Candidate,
    CandidateConnected,
    CandidateFailed,
    CandidateSkipped,
    Clock,
    DialRetried,
    DialStarted,
    Discarded,
    Event,
    FailReason,
    HandshakeFailed,
    HandshakeOk,
    InboundAccepted,
    InboundRejected,
    Origin,
    Picked,
)
from rdv_core.pickers import Offers, Picker
from rdv_core.protocol import (
    CONTINUE_LINE,
    DIAL,
    MAX_LINE,
    Continue,
    Method,
    Misdial,
    ProtocolError,
    build_header_line,
    build_other,
    check_header_line,
    parse_command,
)
from rdv_core.sockets import bound_socket, family_of

logger = logging.getLogger("rdv.client")

#: Shortest time between two dials of one candidate after a refusal or a reset. Our
#: NAT mapping, which the peer's SYN needs, exists only while one of our SYNs is in
#: flight (from our router to the peer's router, whose RST erases it), so we redial
#: the moment the RST arrives: on real paths that is one SYN per round trip. This floor
#: bounds the rate on near-zero-RTT paths (at most 200 SYNs per second per candidate,
#: only while the picker runs, only to an address that actively resets us). Measured in
#: the NAT lab's ``cone-rst`` preset (zero delay, routers reset early SYNs; batches of
#: 10 on a shared 2-core machine): a 100 ms cadence went direct 3/10, 10 ms 5/10, 5 ms
#: 8/10, 8/10 and 6/10 (2/8 under a load average of 4); ``cone-reject`` 0/3 -> 3/3 and
#: 3/5. At zero delay both SYNs must cross within tens of microseconds, so it stays a
#: lottery there; real paths (and the lab with 1 ms per router) have far wider windows.
RETRY_INTERVAL: Final = 0.005

#: The same for non-public candidates (private, link-local, loopback). No NAT stands
#: between us and such an address, so a reset there means that host has nothing on
#: that port (often another LAN's private address that happens to exist here too):
#: a slow redial still catches a peer that starts listening late without hammering
#: a neighbour's printer.
LOCAL_RETRY_INTERVAL: Final = 0.1

#: At most one ``DialRetried`` event per candidate per this many seconds (after the
#: first two): fast redials would otherwise flood logs and UIs. ``attempt`` carries
#: the true count, so nothing is lost.
RETRY_EVENT_INTERVAL: Final = 0.1

#: Pause after a failed ``accept()`` (EMFILE and friends) before accepting again, so a
#: persistent error does not spin the loop.
ACCEPT_ERROR_PAUSE: Final = 0.1

#: How long a direct conn may take to deliver the peer's header line. The peer writes
#: it the instant TCP is up, so this only bounds conns from strangers that never speak
#: (on the accepter, which has no picker deadline, they would otherwise live until
#: the attempt ends). Generous, because a loaded or lossy path can need several RTTs.
HANDSHAKE_TIMEOUT: Final = 10.0

#: StreamReader limit for every conn: also the bound on a protocol line before we can
#: reject it, and what ``readline()`` allows the application. Reading pauses at twice
#: this much unread data, which keeps a fast peer from filling our memory.
STREAM_LIMIT: Final = 256 * 1024

#: Errnos that mean "nobody there yet": worth redialling (see the module docstring).
_RETRYABLE: Final[frozenset[FailReason]] = frozenset({"refused", "reset"})

_ERRNO_REASONS: Final[dict[int, FailReason]] = {
    errno_codes.ECONNREFUSED: "refused",
    errno_codes.ECONNRESET: "reset",
    errno_codes.ECONNABORTED: "reset",
    errno_codes.EPIPE: "reset",
    errno_codes.ENETUNREACH: "unreachable",
    errno_codes.EHOSTUNREACH: "unreachable",
    errno_codes.ENETDOWN: "unreachable",
    errno_codes.EHOSTDOWN: "unreachable",
    errno_codes.EADDRNOTAVAIL: "unreachable",
    errno_codes.EAFNOSUPPORT: "unreachable",
    errno_codes.EINVAL: "unreachable",
    errno_codes.ETIMEDOUT: "timeout",
}


def classify(exc: BaseException) -> tuple[FailReason, int | None]:
    """Classify why a dial or a conn failed: a reason and the errno, if any."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", None
    if isinstance(exc, Misdial):
        return "misdial", None
    if isinstance(exc, ProtocolError):
        return "protocol", None
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return "eof", None
    if isinstance(exc, OSError):
        code = exc.errno
        if code is not None and code in _ERRNO_REASONS:
            return _ERRNO_REASONS[code], code
        if isinstance(exc, TimeoutError):
            return "timeout", code
        if isinstance(exc, ConnectionRefusedError):
            return "refused", code
        if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
            return "reset", code
        return "error", code
    return "error", None


def retry_interval(addr: Addr) -> float:
    """The shortest time between two dials of ``addr`` after a refusal or a reset."""
    return (
        RETRY_INTERVAL
        if addr.space in (AddrSpace.PUBLIC4, AddrSpace.PUBLIC6)
        else (LOCAL_RETRY_INTERVAL)
    )


def space_name(addr: Addr) -> str:
    """The address space of ``addr`` as an event field (``loopback4``, ``invalid``)."""
    space = addr.space
    return format_spaces(space) if space != AddrSpace.INVALID else "invalid"


def infer_origins(peer_addrs: Sequence[Addr]) -> dict[Addr, Origin]:
    """Guess which peer address is the server-observed one.

    ``Rdv-Peer-Addrs`` merges the peer's self addrs (all on its port P) with its
    observed addr, so an IPv4 address whose port differs from the most common port is
    the observed one (a NAT changed the port). When ports agree, the observed address
    coincides with a self address or cannot be told apart: it is reported as ``self``.
    """
    if not peer_addrs:
        return {}
    ports = Counter(a.port for a in peer_addrs)
    non_public_ports = {a.port for a in peer_addrs if a.space != AddrSpace.PUBLIC4}

    def rank(port: int) -> tuple[int, bool]:
        # Ties go to a port that a non-public address uses: NATs rewrite public ones.
        return ports[port], port in non_public_ports

    best = max(ports, key=rank)
    return {a: ("observed" if a.port != best and a.is_ipv4 else "self") for a in peer_addrs}


async def open_stream(
    sock: socket.socket,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Hand a connected socket to asyncio as a stream pair (closing it on failure)."""
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


def _addr_of(sockaddr: Any) -> Addr | None:
    try:
        return Addr.from_sockaddr(tuple(sockaddr))
    except (TypeError, ValueError):
        return None


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
        local = _addr_of(writer.get_extra_info("sockname")) or Addr.parse("0.0.0.0:0")
        remote = _addr_of(writer.get_extra_info("peername")) or fallback_remote
        return cls(candidate, reader, writer, is_relay, local, remote)

    @property
    def alive(self) -> bool:
        """False once we closed it or the transport is going away."""
        return not self.writer.transport.is_closing()

    def close(self) -> None:
        """Close without further bytes (buffered bytes, if any, are still flushed)."""
        self.writer.close()


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
    ) -> None:
        self._method = method
        self._token = token
        self._spaces = spaces
        self._picker = picker
        self._listeners = list(listeners)
        self._port = port
        self._peer_addrs = list(peer_addrs)
        self._relay = relay
        self._clock = clock
        self._emit = emit
        self._new_id = new_id
        self._header = build_header_line(method, token)
        self._offers: Offers[Link] = Offers()
        self._links: list[Link] = []
        self._ready: set[Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialing: set[asyncio.Task[None]] = set()
        self._accepting: set[asyncio.Task[None]] = set()
        self._live = 0
        self._unowned: set[socket.socket] = set()
        self._relay_gone = relay is None
        self._causes: list[str] = []
        self._closing = False
        self._winner: Link | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._outcome: asyncio.Future[Link | None] = asyncio.get_running_loop().create_future()

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
        finally:
            self._closing = True
            self._cleanup()
        if self._winner is None:
            raise NoConnectionError("no conn to the peer could be used", tuple(self._causes))
        return self._winner

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
        origins = infer_origins(self._peer_addrs)
        dialable = 0
        for addr in self._peer_addrs:
            candidate = Candidate(self._new_id(), str(addr), space_name(addr), origins[addr])
            if self._spaces & AddrSpace.NONE or not self._spaces.includes(addr.space):
                self._emit(
                    CandidateSkipped(
                        self._clock(), candidate, f"address space {candidate.space} is not enabled"
                    )
                )
                continue
            dialable += 1
            self._spawn(self._dial(candidate, addr), self._dialing)
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

    def _commit(self, winner: Link) -> None:
        """The dialer's pick on the wire (PROTOCOL.md section 1, step 5)."""
        relay = self._relay
        if not winner.is_relay and relay is not None and relay.alive:
            # Tell the server we went direct (for its metrics), then let the relay go.
            relay.writer.write(build_other(winner.remote))
            relay.close()
            self._emit(
                Discarded(self._clock(), relay.candidate, "went direct: told the server OTHER")
            )
        winner.writer.write(CONTINUE_LINE)

    def _cleanup(self) -> None:
        for listener in self._listeners:
            listener.close()
        for sock in self._unowned:
            sock.close()
        for link in [*self._links, *([self._relay] if self._relay else [])]:
            if link is self._winner:
                continue
            if link.alive:
                if link in self._ready:
                    self._emit(Discarded(self._clock(), link.candidate, "another conn was picked"))
                link.close()

    def _fail(self, text: str) -> None:
        self._causes.append(text)

    # ----- dialing

    async def _dial(self, candidate: Candidate, addr: Addr) -> None:
        loop = asyncio.get_running_loop()
        self._emit(DialStarted(self._clock(), candidate))
        attempt = 1
        last_reason: FailReason = "refused"
        last_event = 0.0
        sock: socket.socket | None = None
        try:
            while True:
                started = loop.time()
                try:
                    sock = bound_socket(family_of(addr), self._port)
                    await loop.sock_connect(sock, addr.sockaddr())
                    break
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                        sock = None
                    reason, code = classify(exc)
                    if code == errno_codes.EADDRNOTAVAIL:
                        self._emit(
                            CandidateSkipped(
                                self._clock(),
                                candidate,
                                "4-tuple in use (EADDRNOTAVAIL): the peer's SYN already "
                                "reached our listener, its conn arrives as inbound",
                            )
                        )
                        return
                    if reason not in _RETRYABLE:
                        self._emit(
                            CandidateFailed(self._clock(), candidate, reason, code, str(exc))
                        )
                        self._fail(f"{candidate.addr}: {reason}")
                        return
                    attempt += 1
                    last_reason = reason
                    now = self._clock()
                    if attempt <= 3 or now - last_event >= RETRY_EVENT_INTERVAL:
                        last_event = now
                        self._emit(DialRetried(now, candidate, attempt, reason, code))
                    pause = retry_interval(addr) - (loop.time() - started)
                    await asyncio.sleep(max(0.0, pause))
        except asyncio.CancelledError:
            if sock is not None:
                sock.close()
            detail = "the race ended"
            if attempt > 1:
                detail += f" after {attempt - 1} {last_reason} dial(s)"
                self._fail(f"{candidate.addr}: {last_reason} ({attempt - 1} dials)")
            self._emit(CandidateFailed(self._clock(), candidate, "cancelled", None, detail))
            raise
        current = asyncio.current_task()
        if current is not None:
            # Connected: from now on this is a handshake, which a relay EOF must not cancel.
            self._dialing.discard(current)
        self._emit(CandidateConnected(self._clock(), candidate))
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
            remote = _addr_of(sockaddr)
            if remote is None:
                sock.close()
                continue
            candidate = Candidate(self._new_id(), str(remote), space_name(remote), "inbound")
            if self._closing:
                sock.close()
                continue
            if self._spaces & AddrSpace.NONE or not self._spaces.includes(remote.space):
                sock.close()
                self._emit(
                    InboundRejected(
                        self._clock(), candidate, f"address space {candidate.space} is not enabled"
                    )
                )
                continue
            self._emit(InboundAccepted(self._clock(), candidate))
            # Counted and owned from now on: a task cancelled before its first step
            # never runs its body, so cleanup closes sockets no task has taken yet.
            self._live += 1
            self._unowned.add(sock)
            self._spawn(self._direct(candidate, sock, remote, outbound=False))

    # ----- direct conns: header lines, then (accepter) the command

    async def _direct(
        self, candidate: Candidate, sock: socket.socket, addr: Addr, outbound: bool
    ) -> None:
        """Header lines on a direct conn, then (accepter) its command.

        The caller has counted the conn in ``_live``; this uncounts it when it ends.
        """
        self._unowned.discard(sock)
        link: Link | None = None
        try:
            try:
                reader, writer = await open_stream(sock)
                link = Link.from_stream(candidate, reader, writer, False, addr)
                self._links.append(link)
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    if outbound:
                        writer.write(self._header)
                    line = await read_line(reader)
                    check_header_line(line, self._method, self._token)
                    if not outbound:
                        writer.write(self._header)
            except asyncio.CancelledError:
                self._emit(HandshakeFailed(self._clock(), candidate, "cancelled", "the race ended"))
                raise
            except (OSError, EOFError, ProtocolError) as exc:
                # TimeoutError is an OSError: our HANDSHAKE_TIMEOUT lands here too.
                reason, _ = classify(exc)
                detail = str(exc) or f"no header line within {HANDSHAKE_TIMEOUT:g}s"
                self._emit(HandshakeFailed(self._clock(), candidate, reason, detail))
                self._fail(f"{candidate.addr}: {reason}")
                if link is not None:
                    link.close()
                return
            self._ready.add(link)
            self._emit(HandshakeOk(self._clock(), candidate))
            if self.is_dialer:
                self._offers.add(link, is_relay=False)
                return
            await self._await_continue(link)
        finally:
            self._live -= 1
            self._check_accepter_done()

    async def _await_continue(self, link: Link) -> None:
        """Accepter: the first command on an authenticated direct conn."""
        try:
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
        link.close()
        self._emit(
            CandidateFailed(
                self._clock(), link.candidate, "protocol", None, "OTHER on a direct conn"
            )
        )

    # ----- the relay

    async def _watch_dialer_relay(self, relay: Link) -> None:
        """Dialer: notice a relay that dies before the pick (the server sends nothing now)."""
        try:
            data = await relay.reader.read(1)
        except OSError as exc:
            reason, code = classify(exc)
            detail = str(exc)
        else:
            reason, code = ("eof", None) if not data else ("protocol", None)
            detail = (
                "the server closed the relay" if not data else "server sent bytes before our pick"
            )
        self._offers.withdraw(relay)
        relay.close()
        self._emit(CandidateFailed(self._clock(), relay.candidate, reason, code, detail))
        self._fail(f"relay: {reason}")

    async def _accepter_relay(self, relay: Link) -> None:
        """Accepter: ``CONTINUE`` from the server means the dialer picked the relay."""
        try:
            command = parse_command(await read_line(relay.reader))
        except PeerClosed:
            relay.close()
            self._emit(
                Discarded(
                    self._clock(),
                    relay.candidate,
                    "the server closed the relay: the dialer went direct",
                )
            )
        except (OSError, ProtocolError) as exc:
            reason, code = classify(exc)
            relay.close()
            self._emit(CandidateFailed(self._clock(), relay.candidate, reason, code, str(exc)))
            self._fail(f"relay: {reason}")
        else:
            if isinstance(command, Continue):
                self._win(relay)
                return
            relay.close()
            self._emit(
                CandidateFailed(
                    self._clock(), relay.candidate, "protocol", None, "OTHER from the server"
                )
            )
            self._fail("relay: protocol")
        self._relay_gone = True
        # The dialer has picked (a direct conn we already hold) or is gone: dials and
        # inbound conns that are not authenticated yet can no longer be chosen.
        for task in [*self._dialing, *self._accepting]:
            task.cancel()
        self._dialing.clear()
        self._accepting.clear()
        self._check_accepter_done()

    # ----- the accepter's outcome

    def _win(self, link: Link) -> None:
        if not self._outcome.done():
            self._outcome.set_result(link)
        else:
            link.close()

    def _check_accepter_done(self) -> None:
        if self.is_dialer or self._outcome.done() or not self._relay_gone:
            return
        if self._live == 0 and not self._dialing and not self._accepting:
            self._outcome.set_result(None)
