"""The one place that makes sockets sharing a port (SO_REUSEADDR + SO_REUSEPORT).

The server conn, the listener and every connector of one attempt share a local port,
so that NATs map them to one public port and TCP simultaneous open can happen.
Every socket on that port needs *both* options: with SO_REUSEADDR alone, binding a
connector fails with EADDRINUSE once the listener exists (docs/LAB-NOTES.md section 6).
"""

from __future__ import annotations

import socket
from typing import Final

from rdv_core.wire import Addr

#: Listen backlog: inbound candidates are few, but a peer may dial each of our addresses.
LISTEN_BACKLOG = 64


#: Linux makes a socket non-blocking in ``socket()`` itself: one system call less per
#: socket than ``setblocking(False)`` (six per loopback attempt, issue 10).
_NONBLOCK: Final = getattr(socket, "SOCK_NONBLOCK", 0)


def reuse_socket(family: socket.AddressFamily) -> socket.socket:
    """A non-blocking TCP socket with SO_REUSEADDR and SO_REUSEPORT set (and no Nagle)."""
    sock = socket.socket(family, socket.SOCK_STREAM | _NONBLOCK)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        no_delay(sock)
        if not _NONBLOCK:
            sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def no_delay(sock: socket.socket) -> None:
    """Turn Nagle's algorithm off: rdv's lines and an application's small writes go out now.

    asyncio does this itself only for sockets made with ``proto=IPPROTO_TCP``; ours (and
    accepted ones) say 0, so without this every conn kept Nagle on, and a small write
    that followed an unacknowledged one waited for the peer's delayed ACK.
    """
    # try, not contextlib.suppress: ten calls per loopback attempt, and the context
    # manager cost more than the system call (docs/notes/issue-10-connect-fifth.md).
    try:  # noqa: SIM105 (see above)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not TCP (a test's socketpair): nothing to do
        pass


def bound_socket(family: socket.AddressFamily, port: int, host: str | None = None) -> socket.socket:
    """A reuse socket bound to ``port`` on the wildcard address (or ``host``).

    An AF_INET6 socket is made dual-stack (IPV6_V6ONLY off) where the system allows it.
    """
    return bound_socket_dual(family, port, host)[0]


def bound_socket_dual(
    family: socket.AddressFamily, port: int, host: str | None = None
) -> tuple[socket.socket, bool]:
    """:func:`bound_socket`, and True if it is known to be dual-stack (IPV6_V6ONLY was
    turned off): the listener then needs no read-back of the option (issue 10: every
    system call of a loopback attempt counts)."""
    sock = reuse_socket(family)
    dual = False
    try:
        if family == socket.AF_INET6:
            # Some systems force v6-only; v4 peers then reach a separate v4 listener.
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                dual = True
            except OSError:
                pass
            sock.bind((host or "::", port, 0, 0))
        else:
            sock.bind((host or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock, dual


def family_of(addr: Addr) -> socket.AddressFamily:
    """AF_INET or AF_INET6 for an address."""
    return socket.AF_INET if addr.is_ipv4 else socket.AF_INET6


def local_port(sock: socket.socket) -> int:
    """The local port a socket is bound to."""
    port = sock.getsockname()[1]
    assert isinstance(port, int)
    return port
