"""One dial's ``connect()`` calls: a non-blocking connect, and bursts of refused redials.

Split out of :mod:`rdv_core.client._dialer`, which decides *when* to dial a candidate
again; this module only knows how one socket dials (docs/LAB-NOTES.md section 8: what
each refused dial costs, and why no dial may ignore the end of the race).
"""

from __future__ import annotations

import asyncio
import errno as errno_codes
import os
import socket
import sys
import time
from typing import Any, Final

from rdv_core.client._budget import CandidateBudget
from rdv_core.tcpinfo import syn_unanswered

#: How long :func:`redial_burst` may redial without yielding to the event loop.
#: Skipping the loop between dials doubled the lab's burst rate (docs/LAB-NOTES.md
#: section 8); 1 ms delays our other tasks (accepts, handshakes, other candidates) by
#: no more than that.
BURST_SLICE: Final = 0.001

#: What ``connect()`` says while our SYN waits for an answer.
IN_FLIGHT: Final = frozenset({errno_codes.EINPROGRESS, errno_codes.EALREADY, errno_codes.EAGAIN})

#: What ``connect()`` says when the far end refused or reset our SYN.
REFUSED_ERRNOS: Final = frozenset({errno_codes.ECONNREFUSED, errno_codes.ECONNRESET})


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
    if code in IN_FLIGHT:
        code = sock.connect_ex(sockaddr)
    while code in IN_FLIGHT:
        # A soft error (an ICMP unreachable met while the kernel would still retry)
        # shows only in SO_ERROR; it ends the dial like the reference's.
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            break
        await _writable(sock, stall_after)
        code = sock.connect_ex(sockaddr)
    if code not in (0, errno_codes.EISCONN):
        raise OSError(code, f"connect to {sockaddr!r} failed: {os.strerror(code)}")


def redial_burst(
    sock: socket.socket, sockaddr: Any, seconds: float, budget: CandidateBudget
) -> tuple[int, int]:
    """Redial at once, without yielding, while each dial is refused on the spot.

    At zero delay our NAT mapping lives only for the microseconds our SYN takes from our
    router to the peer's and back as an RST; the peer's SYN must cross ours inside that
    window, so both peers' bursts must overlap. Skipping the event loop between dials
    roughly doubles the dials per second (see :data:`BURST_SLICE`). Each dial is booked
    in ``budget`` first; the burst ends when ``budget.burst_left()`` is 0.

    Stops at the first dial that is not refused right away (in flight, connected, or
    another error): that dial stays booked and is left as it is, for :func:`connect` to
    finish (a ``connect()`` on it reports its state without sending anything).

    Args:
        sock: a socket whose last dial was refused (Linux only: see :func:`can_redial`).
        sockaddr: where to connect.
        seconds: stop after this long (the event loop waits meanwhile).
        budget: the candidate's share of the SYN budget.

    Returns:
        How many dials were refused, and the last ``connect()`` result (an errno, 0 when
        connected; ``ECONNREFUSED`` when the burst ended on a refusal).
    """
    deadline = time.monotonic() + seconds
    refused = 0
    code = errno_codes.ECONNREFUSED
    while budget.burst_left() > 0 and budget.reserve():
        code = sock.connect_ex(sockaddr)
        if code in IN_FLIGHT:
            code = sock.connect_ex(sockaddr)
        if code not in REFUSED_ERRNOS:
            return refused, code
        budget.settle(0.0)
        refused += 1
        if time.monotonic() >= deadline:
            break
    return refused, errno_codes.ECONNREFUSED


def can_redial(exc: OSError) -> bool:
    """True if a socket whose :func:`connect` raised ``exc`` may simply connect again.

    Linux puts a TCP socket whose connect failed back to the unconnected state, still
    bound; reusing it saves creating, configuring and binding a new one (about half the
    cost of a refused dial). Other systems leave such a socket unspecified: new one.
    """
    return sys.platform == "linux" and not isinstance(exc, SynLost) and exc.errno in REFUSED_ERRNOS


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
