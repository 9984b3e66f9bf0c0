"""Opening our own NAT mapping with a SYN that dies at the far router (accepter, IPv4).

Why (docs/LAB-NOTES.md section 11, "cone-rst: the pre-opening dial"): a router that
answers an unsolicited SYN with an RST also erases, with that RST, the mapping our SYN had
just made in our own router. At zero delay between two such routers our mapping lives for
the microseconds our SYN takes to the far router and back, so the two peers' SYNs had to
cross inside that window: a lottery (6-8 of 20 direct, fewer on a loaded machine). The
classic hole-punching answer, a first SYN with a low TTL, cannot work when the far router
is the *destination* of the SYN (the peer's public address is its own): local delivery
never looks at the TTL, so the far router resets it anyway.

An IPv4 timestamp option does what the TTL cannot. A hop that processes IP options counts
an overflowing timestamp option one up, and drops a packet whose count is already 15 with
an ICMP parameter problem, on forwarding *and* on local delivery (Linux checks options
after conntrack and before TCP). We send the option full, with the count at 14: our own
router, the first hop, counts it to 15, NATs it and keeps the mapping; the far router drops
it before its TCP stack could answer with an RST. Our mapping stays open (``SYN_SENT``, 2
minutes in conntrack), and the peer's next SYN passes it.

The SYN must come from the very socket that will finish the handshake: conntrack checks
sequence numbers, and a later SYN or SYN-ACK of ours with another initial sequence number
(a new socket's, our listener's) falls outside what the routers recorded for the first one
and is marked invalid: the conn comes up and then carries no data (measured: 4 of 4
"direct" runs with no byte through).

The ICMP answer would kill that socket: Linux ends a dial in ``SYN_SENT`` on an ICMP
parameter problem, unless the answer arrives while ``connect()`` still holds the socket
(then it is a soft error). The first version of this trick relied on that, which veth links
give most of the time and not always (here 1 run in 20 ended ``EPROTO``, and the CI machine
went relay 3 times in 10). So the answer is made one the kernel ignores: the pre-opening
SYN leaves with a TTL of :data:`PREOPEN_TTL`, and while it waits the socket sets
``IP_MINTTL`` to that value. The ICMP quotes our SYN as the far router saw it, with a TTL at
least one lower (our own router forwarded it), and Linux drops ICMP errors whose quoted TTL
is under the socket's minimum (RFC 5082's check, in ``tcp_v4_err``) before they touch the
socket, whenever they arrive. The peer's packets pass: they start at 64 (or 128) and cross
fewer than 32 routers on any path whose refusal came back within :data:`QUICK_REFUSAL`. A
far router more than 31 hops away would see our SYN die on the way with a time exceeded,
which the same check ignores: the mapping is open either way. The TTL and the options are
reset as soon as ``connect()`` returns (the SYN-ACK of a simultaneous open and any
retransmission go out as ordinary packets), the minimum when the dial resolves
(:func:`end_preopen`); the socket is an ordinary pending dial, and the peer's SYN meets it
as a simultaneous open, with the ISN both routers saw.

Only one side may do this: two sockets waiting in ``SYN_SENT`` behind two open mappings
would wait for the kernel's retransmission a second later. So the accepter pre-opens and
the dialer keeps redialling as before (:mod:`rdv_core.client._dialer`): its first SYN after
our pre-opening dial connects.

Where a hop ignores options, or drops packets that carry them (many ISP routers do), the
SYN is one more ordinary SYN, or one lost, of the same socket: drawn from the SYN budget
like every other.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import socket
import struct
import sys
from typing import Any, Final

from rdv_core.tcpinfo import syn_answered, syn_unanswered

#: The IPv4 option: timestamp (68), 4 bytes, pointer 5 (past its end: full, no room for a
#: timestamp), flags: overflow 14, "timestamps only". See the module docstring.
TIMESTAMP_OVERFLOW_14: Final = bytes([0x44, 4, 5, 0xE0])

#: The TTL of the pre-opening SYN and the socket's ``IP_MINTTL`` while it waits: under the
#: 64 most systems start with by more than the hops of any path a quick refusal implies,
#: and above the TTL the ICMP answer quotes (see the module docstring).
PREOPEN_TTL: Final = 32

#: ``IP_MINTTL`` (Linux ``linux/in.h``); Python's socket module does not name it.
IP_MINTTL: Final = getattr(socket, "IP_MINTTL", 21)

#: What :func:`preopen_dial` returns when the peer's SYN reached the socket inside
#: ``connect()``, before the options could be cleared (veth links process the whole round
#: trip inside the syscall; measured: 11 runs in 100 inside the dialer's burst, 5 in 120
#: after :data:`PREOPEN_DELAY`). The kernel answered with a SYN-ACK
#: that carried the options, and the far router dropped it like our SYN: the peer's socket
#: waits for an answer that will not come before our retransmission a second later, while
#: the routers hold that SYN-ACK's state. The dialer resets the socket
#: (:func:`reset_on_close`): the RST fails the peer's dial at once and closes both
#: routers' entries, so both sides' next dials start clean (docs/LAB-NOTES.md section 11).
ANSWERED_TOO_SOON: Final = errno_codes.ECONNRESET

#: How long the accepter waits after a quick refusal before its pre-opening dial. The
#: dialer answers its own quick refusals with a burst of back-to-back dials
#: (:data:`~rdv_core.client._budget.BudgetPolicy.burst`, 16 SYNs in 0.5-1 ms here), each
#: of which leaves a conntrack entry in our router for the microseconds until that router's
#: RST. A pre-opening SYN that meets one loses: its mapping clashes with the entry (our SYN
#: or the dialer's is dropped, or our router maps us to another port), or the dialer's next
#: SYN reaches us inside ``connect()`` (see :data:`ANSWERED_TOO_SOON`), and the run goes
#: relay (measured: 5 runs in 80, every one inside the dialer's burst). After the burst the
#: dialer's redials come one by one, 2 ms apart and more, and its burst may start a few ms
#: after ours (its process's own start-up): waiting 2 ms still met it 2 times in 120,
#: 5 ms never in 160 (docs/LAB-NOTES.md section 11, "second pass").
PREOPEN_DELAY: Final = 0.005

#: A refusal that came back within this long came from a router at LAN distance: the only
#: case where the RST erases our mapping before the peer's SYN can use it (farther away,
#: the plain redials find the peer's mapping open, docs/LAB-NOTES.md section 11), and the
#: one where the ICMP answer to a pre-opening SYN arrives inside ``connect()``.
QUICK_REFUSAL: Final = 0.001

#: How many pre-opening dials one candidate makes at most in one attempt.
PREOPEN_MAX: Final = 2


def can_preopen(family: socket.AddressFamily) -> bool:
    """True where the pre-opening dial exists: IPv4 on Linux."""
    return family == socket.AF_INET and sys.platform == "linux"


def preopen_dial(sock: socket.socket, sockaddr: Any) -> int | None:
    """Dial ``sockaddr`` from ``sock`` with a first SYN that dies at the far router.

    Args:
        sock: an unconnected dial socket bound to our port (fresh, or refused before).
        sockaddr: where to connect.

    Returns:
        None when the system refused the options (nothing sent); ``EINPROGRESS`` when the
        socket waits in ``SYN_SENT`` for the peer's SYN (finish it like any pending dial:
        a ``connect()`` reports its state without sending anything, then call
        :func:`end_preopen`); :data:`ANSWERED_TOO_SOON` when the peer's SYN came while
        the options were still set (see there); else the errno the dial ended with
        (``EPROTO``: the ICMP answer reached the socket after all, which is dead and our
        mapping open).
    """
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, PREOPEN_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, PREOPEN_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, TIMESTAMP_OVERFLOW_14)
    except OSError:
        end_preopen(sock)
        return None
    try:
        code = sock.connect_ex(sockaddr)
        # Already answered: the kernel sent that SYN-ACK with the options still set.
        answered = code == errno_codes.EINPROGRESS and syn_answered(sock)
    finally:
        # At once: the SYN-ACK of a simultaneous open, and the kernel's retransmission if
        # it comes to that, must reach the peer as ordinary packets.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, -1)  # the system default
    if answered:
        end_preopen(sock)
        return ANSWERED_TOO_SOON
    # Reading SO_ERROR clears a soft error an ICMP answer left (a kernel without the
    # minimum-TTL check on ICMP errors); a hard one shows here too, socket closed.
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code == errno_codes.EINPROGRESS and (syn_unanswered(sock) or not error):
        return errno_codes.EINPROGRESS  # a pending dial, the ICMP answer to be ignored
    end_preopen(sock)
    if code in (0, errno_codes.EISCONN):
        return code
    return error or code or errno_codes.EPROTO


def reset_on_close(sock: socket.socket) -> None:
    """Make ``sock``'s close send an RST (``SO_LINGER`` 0) instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def end_preopen(sock: socket.socket) -> None:
    """Let ``sock`` take packets of any TTL again, once its pre-opening dial resolved."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 0)
