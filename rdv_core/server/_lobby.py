"""The lobby's bookkeeping: one slot per token, each waiting peer's timer, and the caps
that keep squatters from filling it.

The rules (who is kicked, evicted, timed out, refused or matched; docs/PROTOCOL.md
section 5) are the core's (:mod:`._core`); this module only keeps the slots and the
counts consistent with them. It reads like a mapping from token to the
:class:`~rdv_core.server._peer.Peer` waiting there.

The lobby caps (:class:`LobbyLimits`, docs/PROTOCOL.md section 13) count waiting requests by
their source: the observed address (the client behind a trusted proxy), else the TCP peer.
An IPv4 source is one address and sits in a /24; an IPv6 source is its /64, the one
subnet a host picks addresses from at will (SLAAC, privacy addresses), inside a /56, the
usual delegation to one customer site (RIPE-690). A squatter on one line thus gets the
per-address cap, one with a whole /24 or /56 the per-network cap.

Squatters spread over many networks can still fill the total. Then the lobby shares it
fairly (docs/PROTOCOL.md section 13): a newcomer evicts the oldest waiting request of the
network holding the most slots, unless its own network holds as many
(:meth:`Lobby.fair_share_victim`). Each network's requests are kept in arrival order, and
the networks by how many they hold, so finding that request costs O(1).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from rdv_core.server._peer import Peer, PeerState
from rdv_core.wire import Addr, IPAddress, unmap

__all__ = [
    "DEFAULT_LOBBY_LIMITS",
    "Limit",
    "Lobby",
    "LobbyLimits",
    "SourceKey",
    "addr_keys",
    "source_keys",
]

#: Which cap refused a request: the lobby's (total, address, network), or the one on the
#: open pairs of the request's source (:mod:`._open_pairs`).
Limit = Literal["total", "address", "network", "pairs_address", "pairs_network"]

#: Prefix lengths that make a "source address" and a "network", per IP version.
_ADDRESS_BITS: Final = {4: 32, 6: 64}
_NETWORK_BITS: Final = {4: 24, 6: 56}

SourceKey = tuple[int, int]  # (IP version, address bits above the prefix)


@dataclass(frozen=True, slots=True)
class LobbyLimits:
    """Caps on the requests waiting in the lobby (None: no cap).

    A request that matches a waiting peer never counts against them: only one that would
    wait does. A newer request that evicts an older one with the same token and method
    takes the older one's place in the counts.

    Attributes:
        total: Waiting requests in all. Beyond it a newcomer evicts the oldest request of
            the network holding the most, unless its own network holds as many: then it
            gets ``503`` (fair share, docs/PROTOCOL.md section 13).
        per_address: Waiting requests from one IPv4 address or one IPv6 /64 (``429``).
        per_network: Waiting requests from one IPv4 /24 or one IPv6 /56 (``429``).
        pairs_per_address: Open pairs (from the match to the close of both conns) with a
            peer from one IPv4 address or IPv6 /64; a request from a source at this cap,
            waiting or matching, gets ``429`` (a pair with both peers there counts once).
            Without it a client that pairs with itself holds two fds per pair, for ever.
        pairs_per_network: The same for one IPv4 /24 or IPv6 /56.
        heads_per_address: Conns from one IPv4 address or IPv6 /64 that have not sent a
            whole request yet (a TLS handshake, a head in progress, an idle keep-alive);
            one more gets ``429`` and is closed. Without it one address sending a byte
            now and then on a thousand conns (slowloris) held every fd for 30 s at a time
            (:mod:`._head_slots`). Trusted proxies (``--trust-proxy``) are not counted.
        heads_per_network: The same for one IPv4 /24 or IPv6 /56.
    """

    total: int | None = 10_000
    per_address: int | None = 100
    per_network: int | None = 400
    pairs_per_address: int | None = 100
    pairs_per_network: int | None = 400
    heads_per_address: int | None = 64
    heads_per_network: int | None = 256

    def __post_init__(self) -> None:
        for name in (
            "total",
            "per_address",
            "per_network",
            "pairs_per_address",
            "pairs_per_network",
            "heads_per_address",
            "heads_per_network",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"lobby limit {name} must be at least 1 (or None)")

    @classmethod
    def unlimited(cls) -> LobbyLimits:
        """No cap at all (benchmarks, trusted networks)."""
        return cls(None, None, None, None, None, None, None)


DEFAULT_LOBBY_LIMITS: Final = LobbyLimits()


def source_keys(peer: Peer) -> tuple[SourceKey, SourceKey] | None:
    """The (address, network) keys of a peer's source, or None when it is unknown."""
    info = peer.info
    addr = info.observed if info.observed is not None else info.remote
    return None if addr is None else addr_keys(addr)


def addr_keys(addr: Addr) -> tuple[SourceKey, SourceKey]:
    """The (address, network) keys of one source address (its port plays no part)."""
    return _ip_keys(addr.ip)


@functools.lru_cache(maxsize=1024)
def _ip_keys(ip: IPAddress) -> tuple[SourceKey, SourceKey]:
    """Memoized by IP, not by address: the lobby and the pair caps ask for a peer's keys
    about six times between its request and its ``101`` (limits, enter, leave, the open
    pairs), each an unmap and two shifts of a 128-bit int (issue 10's connect time: the
    server's third of a loopback dial). Keyed by the whole address, every client port was
    an entry of its own (the server's memory test read 1024 of them as growth per conn)."""
    ip = unmap(ip)
    value, version = int(ip), ip.version
    width = 32 if version == 4 else 128
    return (
        (version, value >> (width - _ADDRESS_BITS[version])),
        (version, value >> (width - _NETWORK_BITS[version])),
    )


def describe_source(key: SourceKey, bits: dict[int, int]) -> str:
    version, value = key
    width = 32 if version == 4 else 128
    prefix = bits[version]
    network = ipaddress.ip_network((value << (width - prefix), prefix))
    return str(network.network_address) if prefix == width else str(network)


class Lobby:
    """The waiting peers by token, with their counts by source."""

    __slots__ = ("_holding", "_most", "_per_address", "_per_network", "_slots", "limits")

    def __init__(self, limits: LobbyLimits = DEFAULT_LOBBY_LIMITS) -> None:
        self.limits = limits
        self._slots: dict[str, Peer] = {}
        self._per_address: dict[SourceKey, int] = {}
        #: Each network's waiting peers, oldest first (a dict used as an ordered set).
        self._per_network: dict[SourceKey, dict[Peer, None]] = {}
        #: The networks by how many slots they hold (counts >= 1; each count's networks in
        #: the order they reached it), and the largest count.
        self._holding: dict[int, dict[SourceKey, None]] = {}
        self._most = 0

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, token: object) -> bool:
        return token in self._slots

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __getitem__(self, token: str) -> Peer:
        return self._slots[token]

    def get(self, token: str) -> Peer | None:
        return self._slots.get(token)

    def peers(self) -> list[Peer]:
        """A snapshot of the waiting peers (safe to change the lobby while iterating)."""
        return list(self._slots.values())

    def over_limit(self, peer: Peer, replacing: Peer | None) -> Limit | None:
        """The cap ``peer`` would exceed by waiting (``replacing`` leaves as it enters).

        Its own source's caps first: a source over its share is told so (``429``) even
        when the lobby is full as well.
        """
        limits = self.limits
        keys = source_keys(peer)
        if keys is not None:
            freed = source_keys(replacing) if replacing is not None else None
            address, network = keys
            if limits.per_address is not None:
                waiting = self._per_address.get(address, 0)
                if waiting - (freed is not None and freed[0] == address) >= limits.per_address:
                    return "address"
            if limits.per_network is not None:
                waiting = len(self._per_network.get(network, ()))
                if waiting - (freed is not None and freed[1] == network) >= limits.per_network:
                    return "network"
        total = len(self._slots) - (replacing is not None)
        if limits.total is not None and total >= limits.total:
            return "total"
        return None

    def fair_share_victim(self, peer: Peer) -> Peer | None:
        """Whom ``peer`` evicts when the lobby is full: the oldest waiting request of the
        network holding the most slots (of those tied, the one that has held that many
        longest); None if ``peer``'s own network holds as many (it is the one to refuse)
        or no waiting request has a known network."""
        if not self._most:
            return None
        keys = source_keys(peer)
        own = len(self._per_network.get(keys[1], ())) if keys is not None else 0
        if own >= self._most:
            return None
        network = next(iter(self._holding[self._most]))
        return next(iter(self._per_network[network]))

    def source(self, peer: Peer, limit: Limit) -> str:
        """What a cap counted ``peer`` under, for logs: ``192.0.2.7``, ``2001:db8::/56``."""
        keys = source_keys(peer)
        if limit == "total" or keys is None:
            return "all sources"
        if limit in ("address", "pairs_address"):
            return describe_source(keys[0], _ADDRESS_BITS)
        return describe_source(keys[1], _NETWORK_BITS)

    def enter(self, peer: Peer, timeout: float | None, on_timeout: Callable[[Peer], None]) -> None:
        """Put ``peer`` in its token's slot (the caller emptied it) and arm its timer."""
        peer.state = PeerState.LOBBY
        self._slots[peer.info.token] = peer
        keys = source_keys(peer)
        if keys is not None:
            self._per_address[keys[0]] = self._per_address.get(keys[0], 0) + 1
            peers = self._per_network.setdefault(keys[1], {})
            peers[peer] = None
            self._move(keys[1], len(peers) - 1, len(peers))
        if timeout is not None:
            peer.timer = asyncio.get_running_loop().call_later(timeout, on_timeout, peer)

    def leave(self, peer: Peer) -> bool:
        """Disarm ``peer``'s timer and free its slot; False if it held none."""
        if peer.timer is not None:
            peer.timer.cancel()
            peer.timer = None
        if self._slots.get(peer.info.token) is not peer:
            return False
        del self._slots[peer.info.token]
        keys = source_keys(peer)
        if keys is not None:
            _decrement(self._per_address, keys[0])
            peers = self._per_network[keys[1]]
            del peers[peer]
            self._move(keys[1], len(peers) + 1, len(peers))
            if not peers:
                del self._per_network[keys[1]]
        return True

    def _move(self, network: SourceKey, before: int, after: int) -> None:
        """``network`` now holds ``after`` slots instead of ``before`` (they differ by one)."""
        if before:
            held = self._holding[before]
            del held[network]
            if not held:
                del self._holding[before]
                if self._most == before:
                    self._most = after
        if after:
            self._holding.setdefault(after, {})[network] = None
            self._most = max(self._most, after)


def _decrement(counts: dict[SourceKey, int], key: SourceKey) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]
