"""TCP keepalive on the server's client conns (docs/PROTOCOL.md section 13)."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Final

__all__ = ["KEEPALIVE_COUNT", "KEEPALIVE_IDLE_S", "KEEPALIVE_INTERVAL_S", "enable_keepalive"]

log = logging.getLogger("rdv.server")

#: TCP keepalive for client conns: a lobby client whose machine vanishes without a FIN
#: (NAT state dropped, cable pulled) is found out and its slot freed within ~2 minutes.
KEEPALIVE_IDLE_S: Final = 60
KEEPALIVE_INTERVAL_S: Final = 15
KEEPALIVE_COUNT: Final = 4


def enable_keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:  # e.g. the client already reset the conn
            log.debug("cannot set socket option %s: %s", option, exc)
            return
