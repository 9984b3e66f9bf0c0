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

* A dial to a public address that is refused or reset is redialled at once, in a
  tight burst for the first :data:`BURST_WINDOW` (at most :data:`BURST_MAX_DIALS`
  dials), then every :data:`RETRY_INTERVAL`, until the race ends. Home routers answer
  a SYN that arrives before their own mapping exists with an RST, and that RST also
  erases the sender's mapping: the peer's SYN only gets through our NAT while one of
  our SYNs is in flight. A one-shot dial makes that a timing lottery; keeping a SYN
  in flight most of the time draws again and again (numbers above
  :data:`BURST_WINDOW`). A refusal that is already there when ``connect()`` returns
  costs no trip through the event loop, and on Linux the socket is reused.
* A dial that got the peer's SYN (half-open simultaneous open) is never closed and
  restarted: closing it sends an RST that kills that conn. Only a SYN that got no
  answer at all within :data:`STALL_FACTOR` round trips (Linux ``SYN_SENT``; closing
  it sends nothing) is given up and sent again, instead of waiting a whole second for
  the kernel's retransmission (:func:`stall_timeout`).
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
import os
import socket
import ssl
import sys
import time
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

# ----- redialling a public candidate that refuses or resets us
#
# Why: a home router answers a SYN that arrives before its own side's SYN passed it
# with an RST, and that RST erases the sender's fresh NAT mapping on its way back.
# So the peer's SYN gets through our NAT only while one of our SYNs is in flight
# between the routers: the two SYNs must cross. On real paths that window is about
# the one-way delay between the routers (milliseconds), and redialling as soon as
# each RST arrives keeps a SYN in flight nearly all the time. In the NAT lab at zero
# added delay (``rdv lab run cone-rst``, both routers on one machine) the window is
# microseconds, and what counts is how many SYNs both sides send while both run.
#
# Measured there (batches of 20 runs unless noted, shared 2-core machine, load
# average 1.2-3.5): one dial every 100 ms went direct 0-2/20; redialling at most
# every 5 ms 9/20 (10/20, 12/20 before); a 300 ms burst of immediate redials 7/10
# and 5/10, its failures being dials that hung with no answer at all (a SYN dropped
# when both routers' conntrack raced on the two SYNs, which also leaves each router's
# mapping open and both sockets waiting for the kernel's retransmission a second
# later); failing fast without the event loop plus socket reuse, 1 s burst: 8/10,
# 8/10; giving up unanswered SYNs after a few ms as well (:func:`stall_timeout`):
# 10/10, 19/20, 15/15, 15/15, then 19, 18, 17, 18/20 with a 10000-dial cap and
# 19, 20, 20/20 with the caps below. Bursting only 2 ms in every 10 ms (to let both
# peers' timers wake them together) fell to 8/20 and 7/20: continuous bursts win.
# ``cone-reject`` (the reset comes from a firewall rule): before 8/10 and 5/10,
# after 10/10 and 10/10 (4/10 in one batch during a load spike).

#: For how long after its first dial a public candidate that refuses or resets us is
#: redialled at once, without sleeping. One second is how long the default picker
#: (wait-for-p2p 1 s) waits for a direct conn anyway; later dials keep
#: :data:`RETRY_INTERVAL`. A tight loop only happens when the RST comes back within
#: microseconds (the far end is next door); at a real round-trip time RTT the burst
#: sends one SYN per RTT, i.e. at most ``BURST_WINDOW / RTT`` SYNs (50 at 20 ms).
BURST_WINDOW: Final = 1.0

#: The most dials of one candidate inside :data:`BURST_WINDOW`: bounds the SYNs we
#: send to a near host that keeps resetting us. The lab's zero-delay routers answer
#: within tens of microseconds and a burst reaches 10000-20000 dials per second
#: there; a cap of 10000 ended some bursts after 0.6 s and cost runs (see above).
#: In all, one candidate gets at most ``min(BURST_MAX_DIALS, BURST_WINDOW / RTT)``
#: SYNs in the first second, then one per :data:`RETRY_INTERVAL` while the race
#: lasts (the dialer's picker ends it; the accepter stops when the relay closes).
BURST_MAX_DIALS: Final = 20000

#: How long :func:`redial_burst` may redial without yielding to the event loop.
#: Skipping the loop between dials took the lab's burst rate from about 5000 to
#: 10000 dials per second per side; 1 ms delays our other tasks (accepts,
#: handshakes, other candidates) by no more than that.
BURST_SLICE: Final = 0.001

#: Shortest time between two dials of a public candidate after the burst: the slow,
#: cheap cadence of a long wait (``--wait-p2p`` beyond one second, the accepter).
RETRY_INTERVAL: Final = 0.1

#: The same for non-public candidates (private, link-local, loopback), always. No NAT
#: stands between us and such an address, so a reset there means that host has
#: nothing on that port (often another LAN's private address that happens to exist
#: here too): a slow redial still catches a peer that starts listening late without
#: hammering a neighbour's printer.
LOCAL_RETRY_INTERVAL: Final = 0.1

#: A SYN to a public candidate still without any answer after this many round-trip
#: times (see :func:`stall_timeout`) was dropped on the way. The kernel would only
#: retransmit it after a whole second, when the default picker has given up; a
#: socket still in ``SYN_SENT`` has not seen the peer's SYN, so closing it sends
#: nothing and kills no half-open conn. Twenty RTTs leave ample room for jitter.
STALL_FACTOR: Final = 20

#: ... but never before this many seconds: the floor for near-zero RTTs (LANs, the
#: lab). 20 ms and 5 ms both worked in the lab; 5 ms connects sooner.
STALL_FLOOR: Final = 0.005

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

#: ``tcpi_state`` of a Linux socket whose SYN got no answer yet (``TCP_SYN_SENT``).
_LINUX_TCP_SYN_SENT: Final = 2

#: End of ``tcpi_rtt`` (a u32 of microseconds at offset 68) in Linux's ``struct tcp_info``.
_TCP_INFO_RTT_END: Final = 72

#: What ``connect()`` says while our SYN waits for an answer.
_IN_FLIGHT: Final = frozenset({errno_codes.EINPROGRESS, errno_codes.EALREADY, errno_codes.EAGAIN})

#: What ``connect()`` says when the far end refused or reset our SYN.
_REFUSED_ERRNOS: Final = frozenset({errno_codes.ECONNREFUSED, errno_codes.ECONNRESET})

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


def is_behind_nat(addr: Addr) -> bool:
    """True for public addresses: the only ones a NAT may stand in front of."""
    return addr.space in (AddrSpace.PUBLIC4, AddrSpace.PUBLIC6)


def retry_interval(addr: Addr) -> float:
    """The shortest time between two dials of ``addr`` after a refusal or a reset (no burst)."""
    return RETRY_INTERVAL if is_behind_nat(addr) else LOCAL_RETRY_INTERVAL


def stall_timeout(addr: Addr, rtt: float | None, lost: int) -> float | None:
    """After how long an unanswered SYN to ``addr`` is given up (None: the kernel decides).

    Args:
        addr: the candidate (only public ones, behind NATs, are concerned).
        rtt: the quickest refusal of ``addr`` so far, else the round-trip time of our
            server conn, else None.
        lost: how many SYNs to ``addr`` were given up already: each doubles the wait,
            like TCP's own retransmission backoff, so a path far slower than the hint
            still connects after a few tries.
    """
    if rtt is None or not is_behind_nat(addr):
        return None
    return float(max(STALL_FLOOR, STALL_FACTOR * rtt) * (1 << min(lost, 16)))


def link_rtt(link: Link | None) -> float | None:
    """The kernel's smoothed round-trip time of ``link``'s TCP conn (Linux), in seconds."""
    if link is None or sys.platform != "linux":
        return None
    sock = link.writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_RTT_END)
    except OSError:
        return None
    if len(info) < _TCP_INFO_RTT_END:
        return None
    micros = int.from_bytes(info[_TCP_INFO_RTT_END - 4 : _TCP_INFO_RTT_END], sys.byteorder)
    return micros / 1e6 if micros else None


def redial_pause(addr: Addr, dials: int, since_first: float, last_took: float) -> float:
    """How long to wait before dialling ``addr`` again after a refusal or a reset.

    Zero during the burst (public candidates, first :data:`BURST_WINDOW` seconds, at
    most :data:`BURST_MAX_DIALS` dials), else what is left of :func:`retry_interval`.

    Args:
        addr: the candidate.
        dials: how many times it was dialled so far.
        since_first: seconds since its first dial started.
        last_took: seconds the last dial took (from ``connect()`` to the error).
    """
    if is_behind_nat(addr) and dials < BURST_MAX_DIALS and since_first < BURST_WINDOW:
        return 0.0
    return max(0.0, retry_interval(addr) - last_took)


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


class SynLost(TimeoutError):
    """Our SYN got no answer at all within many round trips: it was dropped on the way."""


def syn_unanswered(sock: socket.socket) -> bool:
    """True if the socket still waits for any answer to its SYN (Linux ``SYN_SENT``).

    Such a socket has not seen the peer's SYN, so closing it sends nothing (Linux sends
    an RST on close only from ``SYN_RECV`` on): no half-open simultaneous open dies with
    it. Anywhere but Linux we cannot tell, so we say False and keep waiting.
    """
    if sys.platform != "linux":
        return False
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return False
    return len(info) > 0 and info[0] == _LINUX_TCP_SYN_SENT


async def connect(sock: socket.socket, sockaddr: Any, *, stall_after: float | None = None) -> None:
    """Connect a non-blocking socket, failing without an event-loop round trip when we can.

    The first ``connect()`` sends the SYN; a second one sends nothing but reports what
    the SYN met so far. When the answer is an RST from a nearby host, the kernel has
    often processed it before the first call returns (on veth paths the whole round trip
    runs inside the syscall), so the refusal costs no trip through the event loop. On
    Linux, a ``connect()`` that reports a failure also returns the socket to the
    unconnected state, still bound to its port: it can dial again (see
    :func:`can_redial`). Measured on loopback, per refused dial: 175 µs with a fresh
    socket and ``loop.sock_connect``, 55-63 µs with a fresh socket and this, 18-32 µs
    when the socket is reused. A SYN really in flight is left alone and awaited: closing
    it could kill a simultaneous open.

    Args:
        sock: a non-blocking TCP socket, fresh or one whose last ``connect()`` here failed.
        sockaddr: where to connect.
        stall_after: if set, a SYN that got no answer at all (still ``SYN_SENT``) after
            this many seconds is given up with :class:`SynLost`, instead of waiting for the
            kernel's first retransmission a whole second later.

    Raises:
        SynLost: see ``stall_after`` (the socket must then be closed).
        OSError: the connect failed (``errno`` set).
    """
    code = sock.connect_ex(sockaddr)
    if code in _IN_FLIGHT:
        code = sock.connect_ex(sockaddr)
    while code in _IN_FLIGHT:
        # A soft error (an ICMP unreachable met while the kernel would still retry)
        # shows only in SO_ERROR; it ends the dial like the reference's.
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            break
        await _writable(sock, stall_after)
        code = sock.connect_ex(sockaddr)
    if code not in (0, errno_codes.EISCONN):
        raise OSError(code, f"connect to {sockaddr!r} failed: {os.strerror(code)}")


def redial_burst(sock: socket.socket, sockaddr: Any, seconds: float, max_dials: int) -> int:
    """Redial at once, without yielding, while each dial is refused or reset on the spot.

    At zero delay our NAT mapping lives only for the microseconds our SYN takes from our
    router to the peer's and back as an RST; the peer's SYN must cross ours inside that
    window, so what counts is how many SYNs both sides send per second of CPU. Skipping
    the event loop between dials roughly doubles that (see :data:`BURST_SLICE`).

    Stops at the first dial that is not refused right away (in flight, connected, or
    another error): that dial is left as it is, for :func:`connect` to finish (a
    ``connect()`` on it reports its state without sending anything).

    Args:
        sock: a socket whose last dial was refused (Linux only: see :func:`can_redial`).
        sockaddr: where to connect.
        seconds: stop after this long (the event loop waits meanwhile).
        max_dials: stop after this many dials.

    Returns:
        How many dials were refused or reset.
    """
    deadline = time.monotonic() + seconds
    refused = 0
    while refused < max_dials:
        code = sock.connect_ex(sockaddr)
        if code in _IN_FLIGHT:
            code = sock.connect_ex(sockaddr)
        if code not in _REFUSED_ERRNOS:
            break
        refused += 1
        if time.monotonic() >= deadline:
            break
    return refused


def can_redial(exc: OSError) -> bool:
    """True if a socket whose :func:`connect` raised ``exc`` may simply connect again.

    Linux puts a TCP socket whose connect failed back to the unconnected state, still
    bound; reusing it saves creating, configuring and binding a new one (about half the
    cost of a refused dial). Other systems leave such a socket unspecified: new one.
    """
    return sys.platform == "linux" and not isinstance(exc, SynLost) and exc.errno in _REFUSED_ERRNOS


async def _writable(sock: socket.socket, stall_after: float | None) -> None:
    """Wait until a connecting socket is writable (connected or failed).

    Returns early, after ``stall_after`` seconds, if the socket got some answer but is
    not connected yet (the caller checks again). No ``asyncio.wait_for`` here: on
    Python 3.11 it swallows a cancellation that coincides with the socket becoming
    writable, and a dial that ignores the end of the race hangs the whole race (seen
    in the lab: ``same-lan-public --delay 2``, 3 runs in 10).

    Raises:
        SynLost: nothing came back within ``stall_after`` seconds (see :func:`connect`).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    fd = sock.fileno()

    def wake(stalled: bool) -> None:
        if not done.done():
            done.set_result(stalled)

    loop.add_writer(fd, wake, False)
    timer = loop.call_later(stall_after, wake, True) if stall_after is not None else None
    try:
        stalled = await done
    finally:
        if timer is not None:
            timer.cancel()
        loop.remove_writer(fd)
    if stalled and syn_unanswered(sock):
        raise SynLost(errno_codes.ETIMEDOUT, f"no answer to our SYN within {stall_after:.3f}s")


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
        # How long a round trip takes here, until a candidate's refusals tell better.
        self._rtt_hint = link_rtt(relay)
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
        sockaddr = addr.sockaddr()
        first = loop.time()
        # The quickest refusal so far: the round trip to whatever resets us.
        fastest_answer: float | None = None
        lost = 0
        try:
            while True:
                started = loop.time()
                try:
                    if sock is None:
                        sock = bound_socket(family_of(addr), self._port)
                    rtt = fastest_answer if fastest_answer is not None else self._rtt_hint
                    await connect(sock, sockaddr, stall_after=stall_timeout(addr, rtt, lost))
                    break
                except OSError as exc:
                    if sock is not None and not can_redial(exc):
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
                    if reason not in _RETRYABLE and not isinstance(exc, SynLost):
                        self._emit(
                            CandidateFailed(self._clock(), candidate, reason, code, str(exc))
                        )
                        self._fail(f"{candidate.addr}: {reason}")
                        return
                    if isinstance(exc, SynLost):
                        lost += 1
                    else:
                        took = loop.time() - started
                        fastest_answer = (
                            took if fastest_answer is None else min(fastest_answer, took)
                        )
                    attempt += 1
                    last_reason = reason
                    now_loop = loop.time()
                    pause = redial_pause(addr, attempt - 1, now_loop - first, now_loop - started)
                    if pause == 0 and sock is not None:
                        # Bursting on a reusable socket: more dials before the loop runs.
                        attempt += redial_burst(
                            sock, sockaddr, BURST_SLICE, BURST_MAX_DIALS - (attempt - 1)
                        )
                    now = self._clock()
                    if attempt <= 3 or now - last_event >= RETRY_EVENT_INTERVAL:
                        last_event = now
                        self._emit(DialRetried(now, candidate, attempt, reason, code))
                    # Even a burst yields to the loop: accepts and handshakes must go on.
                    await asyncio.sleep(pause)
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
