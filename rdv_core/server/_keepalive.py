"""TCP keepalive on the server's client conns (docs/PROTOCOL.md section 13)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Iterable
from typing import Final

__all__ = [
    "KEEPALIVE_COUNT",
    "KEEPALIVE_IDLE_S",
    "KEEPALIVE_INTERVAL_S",
    "enable_keepalive",
    "keepalive_on_listeners",
]

log = logging.getLogger("rdv.server")

#: TCP keepalive for client conns: a lobby client whose machine vanishes without a FIN
#: (NAT state dropped, cable pulled) is found out and its slot freed within ~2 minutes.
KEEPALIVE_IDLE_S: Final = 60
KEEPALIVE_INTERVAL_S: Final = 15
KEEPALIVE_COUNT: Final = 4


#: The options, worked out once (not per conn: issue 10).
_OPTIONS: Final = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)] + [
    (socket.IPPROTO_TCP, getattr(socket, name), value)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    )
    if hasattr(socket, name)
]


def enable_keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        _set_keepalive(sock)


def keepalive_on_listeners(sockets: Iterable[socket.socket]) -> bool:
    """Set keepalive on listening sockets; True when their conns need it no more.

    Linux copies these options from a listening socket to every conn it accepts (the
    listener itself keeps no timer), so one set of calls at start-up stands for four
    system calls per conn (issue 10, docs/notes/issue-10-connect-sixth.md). Elsewhere,
    or when a listener refuses one, every conn still gets :func:`enable_keepalive`.
    """
    if not sys.platform.startswith("linux"):
        return False
    return all([_set_keepalive(sock) for sock in sockets])


def _set_keepalive(sock: socket.socket) -> bool:
    for level, option, value in _OPTIONS:
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:  # e.g. the client already reset the conn
            log.debug("cannot set socket option %s: %s", option, exc)
            return False
    return True
