"""Dialling one peer candidate from the shared port P, until it connects or fails.

The race (:mod:`rdv_core.client._race`) dials every enabled peer candidate at once, each from
its own socket bound to P; this module is one such dial. Where we do better than the
reference (measured in the NAT lab, docs/LAB-NOTES.md sections 7, 8 and 11):

* A dial to a public address that is refused (RST, ICMP port unreachable) is dialled
  again: at once for the first :attr:`~rdv_core.client._budget.BudgetPolicy.burst` dials,
  then after pauses that grow by :data:`PACE_GROWTH` from :data:`PACE_START`. Home
  routers answer a SYN that arrives before their own mapping exists with an RST, and
  that RST also erases the sender's mapping: the peer's SYN gets through our NAT only
  while one of our SYNs is in flight, or once the peer's own SYN has opened its router.
  Every SYN is drawn from the attempt's :mod:`~rdv_core.client._budget` first: no
  address list makes us send more than a few tens of SYNs anywhere.
* A dial that got the peer's SYN (half-open simultaneous open) is never closed and
  restarted: closing it sends an RST that kills that conn. Only a SYN that got no
  answer at all (Linux ``SYN_SENT``; closing it sends nothing) is given up and sent
  again, only by the accepter (the dialer keeps every SYN: the accepter's pre-opening SYN
  may have anchored the dialer's router on it, and conntrack then takes no new ISN,
  docs/LAB-NOTES.md section 11, "the give-up after a pre-opening SYN"), and only after
  :func:`stall_timeout`: a time that fits the path to the *peer*
  (our RTT to the server, and a floor for the peer's side of the path), never the
  round trip to whatever router refused us, which may sit right next to us while the
  peer is far behind it.
* Far from the server, the accepter's dials do not hear ICMP refusals of their SYN
  (:mod:`rdv_core.client._keep_syn`): the refusing router left our mapping open, anchored on
  that SYN, and only that socket can answer the peer's SYN with the ISN our router recorded.
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
from collections.abc import Callable
from typing import Final

from rdv_core.client._budget import CandidateBudget, limit_kernel_retries
from rdv_core.client._connect import (
    BURST_SLICE,
    IN_FLIGHT,
    REFUSED_ERRNOS,
    SynLost,
    can_redial,
    connect,
    redial_burst,
)
from rdv_core.client._failures import classify
from rdv_core.client._keep_syn import can_keep_syn, heed_icmp_refusals, ignore_icmp_refusals
from rdv_core.client._link import Link
from rdv_core.client._preopen import (
    ANSWERED_TOO_SOON,
    PREOPEN_DELAY,
    PREOPEN_MAX,
    QUICK_REFUSAL,
    can_preopen,
    end_preopen,
    preopen_dial,
    reset_on_close,
)
from rdv_core.client._sockets import bound_socket, family_of, reuse_socket
from rdv_core.client._uplinks import Uplink, bind_to_uplink
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
from rdv_core.tcpinfo import syn_unanswered, tcp_min_rtt, tcp_rtt
from rdv_core.wire import Addr, AddrSpace

# ----- redialling a public candidate that refuses us
#
# Why: a home router answers a SYN that arrives before its own side's SYN passed it
# with an RST, and that RST erases the sender's fresh NAT mapping on its way back.
# So the peer's SYN gets through our NAT only while one of our SYNs is in flight
# between the routers (docs/LAB-NOTES.md section 5), or, where the peer's router drops
# or ICMP-rejects instead, once the peer's SYN has opened the peer's router for good.
# The burst covers the first case at zero delay; the paced redials cover the second,
# at any distance, with few SYNs (docs/LAB-NOTES.md section 11).

#: The first pause between two dials of a public candidate once its burst is spent.
#: Each later pause is :data:`PACE_GROWTH` times longer: 2, 3, 4.5, ... ms, so redials
#: come at 2, 5, 9.5, 16, 26, 41, 64, 98, 150, 230, 350, 530, 800 ms after the burst, 13
#: SYNs in the first second. A peer whose SYN opens its router at time T (its distance
#: to its router, plus the start-up difference of the two peers) is reached by the
#: first redial after T: at most 1.5 T + 2 ms, whatever T is (docs/LAB-NOTES.md
#: section 11: a peer 20 ms or 100 ms behind an RST router, 10/10 direct, where the
#: pre-budget dialer relayed).
PACE_START: Final = 0.002

#: Growth of the pause between paced redials: the geometric schedule bounds the SYNs
#: per second (at most ``1 / pause``) and the delay added to a connect (50 %).
PACE_GROWTH: Final = 1.5

#: The longest pause between two redials of one candidate.
PACE_MAX: Final = 2.0

#: The first pause between two dials of a non-public candidate (private, link-local,
#: loopback), which never bursts; later pauses grow by :data:`PACE_GROWTH`. No NAT
#: stands between us and such an address, so a refusal there means that host has
#: nothing on that port (often another LAN's private address that happens to exist
#: here too): a slow redial still catches a peer that starts listening late without
#: hammering a neighbour's printer.
LOCAL_RETRY_INTERVAL: Final = 0.1

#: A SYN to a public candidate still without any answer after this many round-trip
#: times of our server conn (see :func:`stall_timeout`) was dropped on the way. The
#: peer's SYN-ACK comes one round trip *to the peer* after our SYN, and that path is
#: at most about our way to the server plus the peer's: eight of our round trips leave
#: room for a peer up to seven times farther from the server than we are.
STALL_FACTOR: Final = 8

#: ... but never before this many seconds: the peer's own distance, which we do not
#: know. 300 ms covers a peer up to about 250 ms round trip from the server even when
#: we sit next to it (the lab's slowest cell: 200 ms, docs/LAB-NOTES.md section 11).
#: The kernel would retransmit only after a whole second (when the default picker
#: gives up); giving up a SYN that might still be answered is worse, since the
#: answer then meets a new socket and is reset.
STALL_FLOOR: Final = 0.3

#: SYNs are given up only while our round trip to the server is at most this long (a
#: LAN's). A SYN given up is sent again from a fresh socket, with a fresh ISN: if the
#: peer's SYN or SYN-ACK already passed our router and was lost on our own link, our
#: router and the peer's hold that handshake, treat the new SYN as invalid (the peer's
#: router resets it) and the peer's retransmitted SYN-ACK meets the new socket, which
#: resets it: relay (docs/LAB-NOTES.md section 11: the lossy cells at 20 ms lost 1 run
#: in 3 that way). Only the kernel's own retransmission (same socket, same ISN, 1 s
#: later) can finish such a handshake. The give-up exists for the zero-delay conntrack
#: clash (section 7), where both routers, hence both peers, are a LAN's distance from
#: each other; with the lab's server next to the routers, zero-delay cells measure
#: 0.1-1 ms, its 5 ms cells 10 ms and more.
STALL_MAX_RTT: Final = 0.005

#: At most one ``DialRetried`` event per candidate per this many seconds (after the
#: first two): fast redials would otherwise flood logs and UIs. ``attempt`` carries
#: the true count, so nothing is lost.
RETRY_EVENT_INTERVAL: Final = 0.1

#: Reasons that mean "nobody there yet": worth redialling (see the module docstring).
#: ``timeout`` is the kernel giving up our SYN (``TCP_SYNCNT``, :mod:`._budget`).
_RETRYABLE: Final[frozenset[FailReason]] = frozenset({"refused", "reset", "timeout"})


def is_behind_nat(addr: Addr) -> bool:
    """True for public addresses: the only ones a NAT may stand in front of."""
    return addr.space in (AddrSpace.PUBLIC4, AddrSpace.PUBLIC6)


def stall_timeout(addr: Addr, rtt: float | None, lost: int) -> float | None:
    """After how long the accepter's unanswered SYN to ``addr`` is given up (None: never).

    The dialer keeps its SYNs (see the module docstring). Only near a LAN-close server
    (:data:`STALL_MAX_RTT`); elsewhere the kernel
    retransmits the same SYN, which is the only SYN that can finish a handshake the
    peer may already have answered.

    Args:
        addr: the candidate (only public ones, behind NATs, are concerned).
        rtt: the round-trip time of our server conn (:func:`link_rtt`), if known
            (unknown: never given up). Never the time a refusal took: the router that
            refuses may be next to us while the peer sits far behind it
            (docs/LAB-NOTES.md section 11).
        lost: how many SYNs to ``addr`` were given up already: each doubles the wait,
            like TCP's own retransmission backoff, so a path far slower than the hint
            still connects after a few tries.
    """
    if not is_behind_nat(addr) or rtt is None or rtt > STALL_MAX_RTT:
        return None
    return float(max(STALL_FLOOR, STALL_FACTOR * rtt) * (1 << min(lost, 16)))


def keeps_syn(addr: Addr, rtt: float | None) -> bool:
    """True if dials to ``addr`` ignore ICMP refusals and keep their SYN (:mod:`._keep_syn`).

    Only where SYNs are never given up either (a server farther than
    :data:`STALL_MAX_RTT`): there a SYN's socket is the only one that can finish a
    handshake the routers anchored on it.
    """
    return (
        addr.space == AddrSpace.PUBLIC4
        and rtt is not None
        and rtt > STALL_MAX_RTT
        and can_keep_syn(family_of(addr))
    )


def link_rtt(link: Link | None) -> float | None:
    """The kernel's round-trip time of ``link``'s TCP conn (Linux), in seconds.

    Linux only, like :func:`~rdv_core.tcpinfo.syn_unanswered`: the hint only serves
    to give up SYNs that are still unanswered, which only Linux lets us tell. The minimum
    RTT where the kernel has it, else the smoothed one: after a lost server SYN the smoothed
    RTT kept the resent SYN's second, and the picker, which waits a few hints for the
    direct path (``WAIT_RTTS``), waited 4.7 s before it took the relay (a lossy lab run).
    """
    if link is None or sys.platform != "linux":
        return None
    sock = link.writer.get_extra_info("socket")
    return tcp_min_rtt(sock) or tcp_rtt(sock) or None


def redial_pause(addr: Addr, paced: int) -> float:
    """How long to wait before the next paced redial of ``addr`` after a refusal.

    Args:
        addr: the candidate.
        paced: how many paced (not burst) redials it had so far.
    """
    first = PACE_START if is_behind_nat(addr) else LOCAL_RETRY_INTERVAL
    return float(min(PACE_MAX, first * PACE_GROWTH ** min(paced, 64)))


def should_preopen(addr: Addr, elapsed: float) -> bool:
    """True if a refusal of ``addr`` after ``elapsed`` s calls for a pre-opening dial.

    Only public IPv4 addresses (behind a NAT) refused within
    :data:`~rdv_core.client._preopen.QUICK_REFUSAL`: a router at LAN distance reset us,
    erasing our mapping before the peer's SYN could use it, and will answer the
    pre-opening SYN inside ``connect()``.
    """
    return (
        addr.space == AddrSpace.PUBLIC4
        and elapsed <= QUICK_REFUSAL
        and can_preopen(family_of(addr))
    )


def dial_socket(addr: Addr, port: int, via: Uplink | None = None) -> socket.socket:
    """A socket bound to ``port`` to dial ``addr``, with the kernel's SYN retries capped.

    With ``via``, bound to that uplink's interface and address instead of the wildcard
    (docs/LAB-NOTES.md section 13), so the dial leaves through that uplink.
    """
    if via is None:
        sock = bound_socket(family_of(addr), port)
    else:
        sock = reuse_socket(family_of(addr))
        try:
            bind_to_uplink(sock, via, port)
        except OSError:
            sock.close()
            raise
    limit_kernel_retries(sock)
    return sock


async def dial_candidate(
    candidate: Candidate,
    addr: Addr,
    *,
    port: int,
    rtt_hint: float | None,
    budget: CandidateBudget,
    clock: Clock,
    emit: Callable[[Event], None],
    fail: Callable[[str], None],
    via: Uplink | None = None,
    preopen: bool = False,
    loop: asyncio.AbstractEventLoop | None = None,
) -> socket.socket | None:
    """Dial ``addr`` from a socket bound to ``port``, redialling as explained above.

    Args:
        candidate: the candidate, for events.
        addr: where to connect.
        port: our shared local port P.
        rtt_hint: the round-trip time of our server conn (see :func:`link_rtt`), if known.
        budget: this candidate's share of the attempt's SYN budget: every dial draws
            from it, and the candidate fails once it is spent.
        clock: the race's clock, for events.
        emit: where events go.
        fail: records why the candidate failed, for the race's error.
        via: the uplink to dial from (None: the default route).
        preopen: after a refusal from a router at LAN distance, redial with a first SYN
            that opens our NAT mapping and dies at the far router, then wait for the
            peer's SYN on that socket (:mod:`rdv_core.client._preopen`); and at a
            distance (:func:`keeps_syn`), ignore ICMP refusals and keep the SYN
            (:mod:`rdv_core.client._keep_syn`). Only one side of an attempt may do either
            (both lower the TTL of their SYNs and refuse packets that arrive with less):
            the race sets it on the accepter.
        loop: the running loop, if the caller has it at hand (asking for it is a
            ``getpid()``).

    Returns:
        The connected socket, or None when the candidate failed or was skipped (its
        events already emitted).

    Raises:
        asyncio.CancelledError: the race ended (a ``cancelled`` event was emitted).
    """
    loop = loop or asyncio.get_running_loop()
    emit(DialStarted(clock(), candidate))
    attempt = 1
    last_reason: FailReason = "refused"
    last_code: int | None = None
    last_event = 0.0
    sock: socket.socket | None = None
    sockaddr = addr.sockaddr()
    lost = 0
    paced = 0
    preopens = 0
    keep_syn = preopen and keeps_syn(addr, rtt_hint)
    # The pending dial is a pre-opening one.
    waiting = False
    # A dial already booked and in flight (left by a burst), and when it was sent.
    pending = False
    dial_at = loop.time()
    # An error a burst met on its last dial, handled like one from connect().
    carried: OSError | None = None
    try:
        while True:
            try:
                if carried is not None:
                    exc, carried = carried, None
                    raise exc
                if not pending:
                    if not budget.reserve():
                        detail = (
                            f"SYN budget spent: {budget.booked} SYN"
                            f"{'' if budget.booked == 1 else 's'} in {attempt - 1} "
                            f"dial{'' if attempt - 1 == 1 else 's'}, the last {last_reason}"
                            if attempt > 1
                            # Not "0 SYNs in 0 dials, the last refused": nothing was
                            # refused; the attempt's or the session's SYNs (PROTOCOL 11,
                            # 16.5) were gone before this candidate's turn.
                            else "SYN budget spent before its first dial: not dialled"
                        )
                        emit(CandidateFailed(clock(), candidate, last_reason, last_code, detail))
                        fail(f"{candidate.addr}: {last_reason} (SYN budget spent)")
                        return None
                    dial_at = loop.time()
                pending = False
                if sock is None:
                    sock = dial_socket(addr, port, via)
                    if keep_syn:
                        ignore_icmp_refusals(sock)
                # A pre-opening SYN gets no answer on purpose: never give it up, the
                # peer's SYN is on its way to that very socket (rdv_core.client._preopen).
                # The dialer gives up none either: the peer's pre-opening SYN may have
                # anchored our router's entry on this one (see the module docstring).
                stall = None if waiting or not preopen else stall_timeout(addr, rtt_hint, lost)
                preopened, waiting = waiting, False
                try:
                    await connect(sock, sockaddr, stall_after=stall)
                finally:
                    if preopened:
                        end_preopen(sock)
                if keep_syn:
                    heed_icmp_refusals(sock)
                budget.settle(loop.time() - dial_at)
                break
            except OSError as exc:
                budget.settle(loop.time() - dial_at)
                if sock is not None and not can_redial(exc):
                    sock.close()
                    sock = None
                reason, code = classify(exc)
                if preopens and code == errno_codes.EPROTO:
                    # The far router's answer to our pre-opening SYN reached the socket
                    # after all (rdv_core.client._preopen): redial plainly.
                    reason = "refused"
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
                attempt += 1
                last_reason, last_code = reason, code
                pause = 0.0
                if isinstance(exc, SynLost) or reason == "timeout":
                    lost += 1  # resend at once: that SYN is gone
                elif (
                    preopen
                    and preopens < PREOPEN_MAX
                    and sock is not None
                    and should_preopen(addr, loop.time() - dial_at)
                    # Still waiting: an ICMP refusal met inside connect() (a soft
                    # error), which erased nothing; the socket dials on as it is.
                    and not syn_unanswered(sock)
                    and budget.reserve()
                ):
                    # The far router's RST just erased our mapping: open it for good
                    # with a SYN that dies there, and wait on that socket for the peer's
                    # SYN (docs/LAB-NOTES.md section 11, "cone-rst").
                    preopens += 1
                    await asyncio.sleep(PREOPEN_DELAY)
                    dial_at = loop.time()
                    code_now = preopen_dial(sock, sockaddr)
                    if code_now == errno_codes.EINPROGRESS:
                        pending = waiting = True
                    elif code_now in (0, errno_codes.EISCONN):
                        # Connected inside connect(): the peer's SYN met ours on the way
                        # and the handshake finished in the syscall (veth paths). A
                        # connected dial, not an error (closing it reset the peer's conn:
                        # 'a-icmp/b-rst 0/0', docs/LAB-NOTES.md section 11).
                        pending = True
                    elif code_now == ANSWERED_TOO_SOON:
                        # Our SYN-ACK left with the options and died: reset, start over.
                        reset_on_close(sock)
                        sock.close()
                        sock = None
                        carried = OSError(code_now, "SYN-ACK sent before the options were cleared")
                    elif code_now is not None:
                        carried = OSError(code_now, os.strerror(code_now))
                    else:  # the system refused the option: nothing sent
                        budget.settle(0.0)
                        pending = False
                        preopens = PREOPEN_MAX
                        pause = redial_pause(addr, paced)
                        paced += 1
                elif not is_behind_nat(addr) or budget.burst_left() == 0 or sock is None:
                    pause = redial_pause(addr, paced)
                    paced += 1
                else:
                    # Bursting on a reusable socket: more dials before the loop runs.
                    refused, code_now = redial_burst(sock, sockaddr, BURST_SLICE, budget)
                    attempt += refused
                    if code_now in IN_FLIGHT or code_now in (0, errno_codes.EISCONN):
                        pending, dial_at = True, loop.time()
                    elif code_now not in REFUSED_ERRNOS:
                        carried = OSError(code_now, os.strerror(code_now))
                now = clock()
                if attempt <= 3 or now - last_event >= RETRY_EVENT_INTERVAL:
                    last_event = now
                    emit(DialRetried(now, candidate, attempt, reason, code))
                # Even a burst yields to the loop: accepts and handshakes must go on.
                await asyncio.sleep(pause)
    except asyncio.CancelledError:
        budget.settle(loop.time() - dial_at)
        if sock is not None:
            sock.close()
        detail = "the race ended"
        if attempt > 1:
            detail += f" after {attempt - 1} {last_reason} dial" + ("" if attempt == 2 else "s")
            fail(f"{candidate.addr}: {last_reason} ({attempt - 1} dials)")
        emit(CandidateFailed(clock(), candidate, "cancelled", None, detail))
        raise
    return sock
