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
"direct" runs with no byte through). It can: when the ICMP answer arrives while
``connect()`` still holds the socket (on veth pairs between namespaces, the lab's links,
the whole round trip is processed inside the syscall; on a physical link the answer comes
later, the socket dies with ``EPROTO`` and the dialer redials plainly: one SYN spent, nothing
won), Linux records it as a soft error and the socket stays in
``SYN_SENT``. We then clear the soft error and the option; the socket is an ordinary
pending dial, and the peer's SYN meets it as a simultaneous open, with the ISN both
routers saw. Only one side may do this: two sockets waiting in ``SYN_SENT`` behind two
open mappings would wait for the kernel's retransmission a second later. So the accepter
pre-opens and the dialer keeps redialling as before (:mod:`rdv_core.client._dialer`): its
first SYN after our pre-opening dial connects.

Where a hop ignores options, or drops packets that carry them (many ISP routers do), the
SYN is one more ordinary SYN, or one lost, of the same socket: drawn from the SYN budget
like every other.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import socket
import sys
from typing import Any, Final

from rdv_core.client._tcpinfo import syn_unanswered

#: The IPv4 option: timestamp (68), 4 bytes, pointer 5 (past its end: full, no room for a
#: timestamp), flags: overflow 14, "timestamps only". See the module docstring.
TIMESTAMP_OVERFLOW_14: Final = bytes([0x44, 4, 5, 0xE0])

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
        None when the system refused the option (nothing sent); ``EINPROGRESS`` when the
        socket waits in ``SYN_SENT`` for the peer's SYN (finish it like any pending dial:
        a ``connect()`` reports its state without sending anything); else the errno the
        dial ended with (``EPROTO``: the ICMP answer came after ``connect()`` returned,
        the socket is dead and our mapping open: see the module docstring).
    """
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, TIMESTAMP_OVERFLOW_14)
    except OSError:
        return None
    try:
        code = sock.connect_ex(sockaddr)
        # Reading SO_ERROR clears the soft error the ICMP answer left; a hard one shows
        # here too, with the socket closed.
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        alive = syn_unanswered(sock)
    finally:
        # The kernel's retransmission, if it comes to that, must reach the peer.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"")
    if code == errno_codes.EINPROGRESS and (alive or not error):
        return errno_codes.EINPROGRESS  # soft error cleared, or none: a pending dial
    if code in (0, errno_codes.EISCONN):
        return code
    return error or code or errno_codes.EPROTO
