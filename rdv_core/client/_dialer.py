"""Dialling one peer candidate from the shared port P, until it connects or fails.

The race (:mod:`rdv_core.client._race`) dials every enabled peer candidate at once, each from
its own socket bound to P; this module is one such dial. Where we do better than the
reference (measured in the NAT lab, docs/LAB-NOTES.md sections 7 and 8):

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
"""

from __future__ import annotations

import asyncio
import errno as errno_codes
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from rdv_core.client._failures import classify
from rdv_core.client._link import Link
from rdv_core.client._sockets import bound_socket, family_of
from rdv_core.client._tcpinfo import syn_unanswered, tcp_rtt
from rdv_core.events import (
    Candidate,
    CandidateFailed,
    CandidateSkipped,
    Clock,
    DialRetried,
    DialStarted,
    Event,
    FailReason,
)
from rdv_core.wire import Addr, AddrSpace

# ----- redialling a public candidate that refuses or resets us
#
# Why: a home router answers a SYN that arrives before its own side's SYN passed it
# with an RST, and that RST erases the sender's fresh NAT mapping on its way back.
# So the peer's SYN gets through our NAT only while one of our SYNs is in flight
# between the routers: the two SYNs must cross (docs/LAB-NOTES.md section 5).
# Redialling as soon as each RST arrives keeps a SYN in flight nearly all the time;
# the constants below are what won in the NAT lab's ``cone-rst`` and ``cone-reject``
# (docs/LAB-NOTES.md sections 7 and 8: one-shot and slow redials 0-12/20, these
# 19-20/20).

#: For how long after its first dial a public candidate that refuses or resets us is
#: redialled at once, without sleeping. One second is how long the default picker
#: (wait-for-p2p 1 s) waits for a direct conn anyway; later dials keep
#: :data:`RETRY_INTERVAL`. A tight loop only happens when the RST comes back within
#: microseconds (the far end is next door); at a real round-trip time RTT the burst
#: sends one SYN per RTT, i.e. at most ``BURST_WINDOW / RTT`` SYNs (50 at 20 ms).
BURST_WINDOW: Final = 1.0

#: The most dials of one candidate inside :data:`BURST_WINDOW`: bounds the SYNs we
#: send to a near host that keeps resetting us; a lower cap cost runs in the lab, where
#: a burst reaches 10000-20000 dials per second (docs/LAB-NOTES.md section 8).
#: In all, one candidate gets at most ``min(BURST_MAX_DIALS, BURST_WINDOW / RTT)``
#: SYNs in the first second, then one per :data:`RETRY_INTERVAL` while the race
#: lasts (the dialer's picker ends it; the accepter stops when the relay closes).
BURST_MAX_DIALS: Final = 20000

#: How long :func:`redial_burst` may redial without yielding to the event loop.
#: Skipping the loop between dials doubled the lab's burst rate (docs/LAB-NOTES.md
#: section 8); 1 ms delays our other tasks (accepts, handshakes, other candidates) by
#: no more than that.
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
#: lab). 5 ms connects sooner than 20 ms (docs/LAB-NOTES.md section 8).
STALL_FLOOR: Final = 0.005

#: At most one ``DialRetried`` event per candidate per this many seconds (after the
#: first two): fast redials would otherwise flood logs and UIs. ``attempt`` carries
#: the true count, so nothing is lost.
RETRY_EVENT_INTERVAL: Final = 0.1

#: What ``connect()`` says while our SYN waits for an answer.
_IN_FLIGHT: Final = frozenset({errno_codes.EINPROGRESS, errno_codes.EALREADY, errno_codes.EAGAIN})

#: What ``connect()`` says when the far end refused or reset our SYN.
_REFUSED_ERRNOS: Final = frozenset({errno_codes.ECONNREFUSED, errno_codes.ECONNRESET})

#: Errnos that mean "nobody there yet": worth redialling (see the module docstring).
_RETRYABLE: Final[frozenset[FailReason]] = frozenset({"refused", "reset"})


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
    """The kernel's smoothed round-trip time of ``link``'s TCP conn (Linux), in seconds.

    Linux only, like :func:`~rdv_core.client._tcpinfo.syn_unanswered`: the hint only serves
    to give up SYNs that are still unanswered, which only Linux lets us tell.
    """
    if link is None or sys.platform != "linux":
        return None
    return tcp_rtt(link.writer.get_extra_info("socket")) or None


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


class SynLost(TimeoutError):
    """Our SYN got no answer at all within many round trips: it was dropped on the way."""


async def connect(sock: socket.socket, sockaddr: Any, *, stall_after: float | None = None) -> None:
    """Connect a non-blocking socket, failing without an event-loop round trip when we can.

    The first ``connect()`` sends the SYN; a second one sends nothing but reports what
    the SYN met so far. When the answer is an RST from a nearby host, the kernel has
    often processed it before the first call returns (on veth paths the whole round trip
    runs inside the syscall), so the refusal costs no trip through the event loop. On
    Linux, a ``connect()`` that reports a failure also returns the socket to the
    unconnected state, still bound to its port: it can dial again (see
    :func:`can_redial`); what each refused dial costs: docs/LAB-NOTES.md section 8.
    A SYN really in flight is left alone and awaited: closing
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
    writable, and a dial that ignores the end of the race hangs the whole race
    (docs/LAB-NOTES.md section 8).

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


async def dial_candidate(
    candidate: Candidate,
    addr: Addr,
    *,
    port: int,
    rtt_hint: float | None,
    clock: Clock,
    emit: Callable[[Event], None],
    fail: Callable[[str], None],
) -> socket.socket | None:
    """Dial ``addr`` from a socket bound to ``port``, redialling as explained above.

    Args:
        candidate: the candidate, for events.
        addr: where to connect.
        port: our shared local port P.
        rtt_hint: the round-trip time of our server conn (see :func:`link_rtt`), if known.
        clock: the race's clock, for events.
        emit: where events go.
        fail: records why the candidate failed, for the race's error.

    Returns:
        The connected socket, or None when the candidate failed or was skipped (its
        events already emitted).

    Raises:
        asyncio.CancelledError: the race ended (a ``cancelled`` event was emitted).
    """
    loop = asyncio.get_running_loop()
    emit(DialStarted(clock(), candidate))
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
                    sock = bound_socket(family_of(addr), port)
                rtt = fastest_answer if fastest_answer is not None else rtt_hint
                await connect(sock, sockaddr, stall_after=stall_timeout(addr, rtt, lost))
                break
            except OSError as exc:
                if sock is not None and not can_redial(exc):
                    sock.close()
                    sock = None
                reason, code = classify(exc)
                if code == errno_codes.EADDRNOTAVAIL:
                    emit(
                        CandidateSkipped(
                            clock(),
                            candidate,
                            "4-tuple in use (EADDRNOTAVAIL): the peer's SYN already "
                            "reached our listener, its conn arrives as inbound",
                        )
                    )
                    return None
                if reason not in _RETRYABLE and not isinstance(exc, SynLost):
                    emit(CandidateFailed(clock(), candidate, reason, code, str(exc)))
                    fail(f"{candidate.addr}: {reason}")
                    return None
                if isinstance(exc, SynLost):
                    lost += 1
                else:
                    took = loop.time() - started
                    fastest_answer = took if fastest_answer is None else min(fastest_answer, took)
                attempt += 1
                last_reason = reason
                now_loop = loop.time()
                pause = redial_pause(addr, attempt - 1, now_loop - first, now_loop - started)
                if pause == 0 and sock is not None:
                    # Bursting on a reusable socket: more dials before the loop runs.
                    attempt += redial_burst(
                        sock, sockaddr, BURST_SLICE, BURST_MAX_DIALS - (attempt - 1)
                    )
                now = clock()
                if attempt <= 3 or now - last_event >= RETRY_EVENT_INTERVAL:
                    last_event = now
                    emit(DialRetried(now, candidate, attempt, reason, code))
                # Even a burst yields to the loop: accepts and handshakes must go on.
                await asyncio.sleep(pause)
    except asyncio.CancelledError:
        if sock is not None:
            sock.close()
        detail = "the race ended"
        if attempt > 1:
            detail += f" after {attempt - 1} {last_reason} dial(s)"
            fail(f"{candidate.addr}: {last_reason} ({attempt - 1} dials)")
        emit(CandidateFailed(clock(), candidate, "cancelled", None, detail))
        raise
    return sock
