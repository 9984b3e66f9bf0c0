"""Keeping a far dial's SYN alive through an ICMP refusal (IPv4, Linux).

Why (docs/LAB-NOTES.md section 11, "Loss, third step"): a peer's router that answers an
early SYN with an ICMP reject leaves *our* router's conntrack entry for that SYN in place:
our mapping stays open, and conntrack's window tracking anchors our side of the conn on
that SYN's initial sequence number. The ICMP answer, though, kills the socket (a hard error
for a socket in ``SYN_SENT`` once ``connect()`` returned, which is always the case when the
router is milliseconds away). Whatever answers the peer's SYN next (a redial, even from the
same socket, whose ISN is 3 higher; or our listener) then carries another ISN than the one
our router anchored; once the peer's SYN passed our router (``SYN_SENT2``) conntrack marks
our later packets invalid and sends them out untranslated: the TCP conn comes up on both
sides and no header line ever crosses (measured, ``a-icmp/b-drop`` and ``a-icmp/b-rst``
20/20 loss5%: 5 of the 9 relayed runs in 60, ``conntrack -S`` 9-11 invalid each).

So a far dial does not hear ICMP errors about its SYN: the SYN leaves with a TTL of
:data:`~rdv_core.client._preopen.PREOPEN_TTL` (32) and the socket sets ``IP_MINTTL`` to the
same value while it dials. An ICMP error quotes our SYN as the refusing router saw it, with
a TTL at least one lower (our own router forwarded it), and Linux drops ICMP errors whose
quoted TTL is under the socket's minimum before they touch the socket (RFC 5082's check in
``tcp_v4_err``), whenever they arrive. The peer's packets pass: they start at 64 (or 128)
and cross fewer than 32 routers. The socket keeps waiting in ``SYN_SENT`` behind its open
mapping, the peer's SYN meets it as a simultaneous open with the ISN both routers recorded,
and if nothing comes the kernel retransmits the same SYN (same ISN) after a second. An RST
(a TCP packet, TTL 64 minus the hops) is still heard: it erases our mapping on its way
back, so a redial is right there.

Only one side of an attempt may do this, the accepter (like the pre-opening dial): the
peer's packets must arrive with a TTL of at least 32, and a peer whose own SYNs left with
32 arrives with less (measured: with both sides doing it, 0 of 20 direct, every SYN
dropped). Where the dialer's SYN is ICMP-refused it redials as before.

Near a LAN-close server (:data:`~rdv_core.client._dialer.STALL_MAX_RTT`) nothing changes:
there the ICMP answer arrives inside ``connect()`` (a soft error) and the zero-delay rules
of docs/LAB-NOTES.md sections 7 and 11 apply. IPv6 has no such check (Linux compares the
ICMPv6 packet's own hop limit, not the quoted one): IPv4 only.
"""

from __future__ import annotations

import contextlib
import socket
import sys

from rdv_core.client._preopen import IP_MINTTL, PREOPEN_TTL


def can_keep_syn(family: socket.AddressFamily) -> bool:
    """True where a dial can ignore ICMP errors about its SYN: IPv4 on Linux."""
    return family == socket.AF_INET and sys.platform == "linux"


def ignore_icmp_refusals(sock: socket.socket) -> bool:
    """Make ``sock``'s SYNs leave with TTL 32 and ignore ICMP errors quoting them.

    Returns:
        False when the system refused an option (the socket is left as it was).
    """
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, PREOPEN_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, PREOPEN_TTL)
    except OSError:
        heed_icmp_refusals(sock)
        return False
    return True


def heed_icmp_refusals(sock: socket.socket) -> None:
    """Undo :func:`ignore_icmp_refusals` once the dial resolved: an ordinary conn again."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, -1)  # the system default
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 0)
