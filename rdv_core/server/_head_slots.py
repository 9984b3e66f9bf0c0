"""Conns that have not sent a whole request yet, counted per source (slowloris).

A conn holds a descriptor from its accept until its request is admitted, for up to the
head deadline (30 s, renewed by each answered keep-alive request). One address that sent
a byte now and then on 1,100 conns took every descriptor of a server with 1,024 and the
others' requests met ``503 rdv server at capacity`` (docs/PROTOCOL.md section 13). The
lobby and pair caps count requests, which such a client never finishes: these slots count
the conns themselves, by source (an IPv4 address or IPv6 /64, inside an IPv4 /24 or IPv6
/56: the lobby's keys), and a conn beyond its source's share is answered ``429`` at once
and closed.

The source is the TCP peer: what a PROXY header or a forwarding header says comes with the
request, too late for a conn that never sends one. A trusted proxy's own conns are not
counted (every client behind it would share its one address).
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import Final, Literal

from rdv_core import wire
from rdv_core.server._lobby import LobbyLimits, SourceKey, addr_keys
from rdv_core.wire import Addr, AddrError, IPAddress

__all__ = ["REFUSAL_WAIT_S", "TOO_MANY_HEADS", "HeadSlots", "Slot", "refusal", "socket_peer"]

#: A counted conn's place: the (address, network) keys it holds a slot under.
Slot = tuple[SourceKey, SourceKey]

#: How long a refused conn waits for its request's first bytes (to answer after reading them).
REFUSAL_WAIT_S: Final = 1.0
#: What a conn beyond its source's share is told before it is closed.
TOO_MANY_HEADS: Final = "too many unfinished requests from your address, try again later"


class HeadSlots:
    """The count of unfinished conns per source address and per network."""

    __slots__ = ("_limits", "_per_address", "_per_network", "_trusted")

    def __init__(
        self, limits: Callable[[], LobbyLimits], trusted: Callable[[Addr], bool] | None
    ) -> None:
        """``limits``: the server's current caps; ``trusted``: a balancer's address (None:
        no balancer is trusted)."""
        self._limits = limits
        self._trusted = trusted
        self._per_address: dict[SourceKey, int] = {}
        self._per_network: dict[SourceKey, int] = {}

    def take(self, remote: Addr | None) -> Slot | Literal[False] | None:
        """A slot for a new conn from ``remote``.

        Returns the keys to :meth:`give` back when the conn is admitted or closed, None
        when the conn is not counted (its source is unknown or a trusted proxy), or False
        when its source holds its share: answer it with :func:`refusal` and close it.
        """
        # Every accepted conn comes here: kept to a few dict operations (issue 10's connect
        # time; docs/notes/issue-10-connect-fifth.md).
        if remote is None or (self._trusted is not None and self._trusted(remote)):
            return None
        limits = self._limits()
        keys = _ip_keys(remote.ip)
        address, network = keys
        held_address = self._per_address.get(address, 0)
        held_network = self._per_network.get(network, 0)
        if (limits.heads_per_address is not None and held_address >= limits.heads_per_address) or (
            limits.heads_per_network is not None and held_network >= limits.heads_per_network
        ):
            return False
        self._per_address[address] = held_address + 1
        self._per_network[network] = held_network + 1
        return keys

    def give(self, keys: Slot) -> None:
        """The conn of ``keys`` (from :meth:`take`) was admitted or closed."""
        address, network = keys
        left = self._per_address[address] - 1
        if left:
            self._per_address[address] = left
        else:
            del self._per_address[address]
        left = self._per_network[network] - 1
        if left:
            self._per_network[network] = left
        else:
            del self._per_network[network]

    def __len__(self) -> int:
        """Conns counted, over every source."""
        return sum(self._per_address.values())


@functools.lru_cache(maxsize=4096)
def _ip_keys(ip: IPAddress) -> Slot:
    """:func:`addr_keys` of an IP (memoized: a source opens its conns one after another)."""
    return addr_keys(Addr(ip, 0))


def refusal() -> bytes:
    """The ``429`` a conn beyond its source's share gets (then it is closed)."""
    return wire.build_plain_response(429, TOO_MANY_HEADS, close=True)


def socket_peer(sock: socket.socket) -> Addr | None:
    """The TCP peer of an accepted socket, or None when it is gone or not IP."""
    try:
        return Addr.from_sockaddr(sock.getpeername())
    except (OSError, AddrError, ValueError):
        return None
