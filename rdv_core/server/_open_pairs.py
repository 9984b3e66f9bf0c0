"""The open pairs of each source, for the caps that keep one client from holding them all.

The lobby caps (:mod:`._lobby`) count waiting requests only. A request that matches leaves
the lobby, so a client that dials and accepts its own tokens left it at once and held two
fds per pair for as long as it liked: with no ``--idle-timeout`` for ever, with one by
sending a byte now and then. Enough of them took every descriptor of the server, and every
other client got ``503 rdv server at capacity`` (docs/PROTOCOL.md section 13).

So each open pair, from its match until *both* its conns have closed (what its fds cost),
counts once against each distinct source among its two peers: the peer's address (an IPv4
address, an IPv6 /64) and its network (an IPv4 /24, an IPv6 /56), the lobby's own keys.
A self-paired pair counts once against its one source; a pair between two sources, once
against each.
"""

from __future__ import annotations

from typing import Final

from rdv_core.server._lobby import Limit, LobbyLimits, SourceKey, source_keys
from rdv_core.server._peer import Peer

__all__ = ["OpenPairs"]


class _Claim:
    """One pair's counts: its sources, and how many of its two conns are still open."""

    __slots__ = ("addresses", "networks", "open")

    def __init__(self, addresses: set[SourceKey], networks: set[SourceKey]) -> None:
        self.addresses = addresses
        self.networks = networks
        self.open = 2


class OpenPairs:
    """Open pairs by source address and network."""

    __slots__ = ("_by_address", "_by_network", "_claims")

    def __init__(self) -> None:
        self._by_address: dict[SourceKey, int] = {}
        self._by_network: dict[SourceKey, int] = {}
        self._claims: dict[Peer, _Claim] = {}

    def over_limit(self, limits: LobbyLimits, peer: Peer) -> Limit | None:
        """The pair cap ``peer``'s source is at (it may open no more pairs), or None."""
        keys = source_keys(peer)
        if keys is None:
            return None
        address, network = keys
        if (cap := limits.pairs_per_address) is not None and self._by_address.get(
            address, 0
        ) >= cap:
            return "pairs_address"
        if (cap := limits.pairs_per_network) is not None and self._by_network.get(
            network, 0
        ) >= cap:
            return "pairs_network"
        return None

    def add(self, dialer: Peer, accepter: Peer) -> None:
        """``dialer`` and ``accepter`` were matched: their pair is open."""
        keys = [k for k in (source_keys(dialer), source_keys(accepter)) if k is not None]
        claim = _Claim({k[0] for k in keys}, {k[1] for k in keys})
        for address in claim.addresses:
            self._by_address[address] = self._by_address.get(address, 0) + 1
        for network in claim.networks:
            self._by_network[network] = self._by_network.get(network, 0) + 1
        self._claims[dialer] = self._claims[accepter] = claim

    def release(self, peer: Peer) -> None:
        """``peer``'s conn closed, or it left its pair (back to the lobby): once both of a
        pair's peers are released, the pair no longer counts."""
        claim = self._claims.pop(peer, None)
        if claim is None:
            return
        claim.open -= 1
        if claim.open:
            return
        for counts, keys in (
            (self._by_address, claim.addresses),
            (self._by_network, claim.networks),
        ):
            for key in keys:
                left = counts[key] - 1
                if left:
                    counts[key] = left
                else:
                    del counts[key]

    def __len__(self) -> int:
        """Peers still counted in an open pair."""
        return len(self._claims)


#: Section 5 bodies of the pair caps (``429``, as the lobby's per-source caps).
PAIR_CAP_BODIES: Final[dict[Limit, tuple[int, str]]] = {
    "pairs_address": (429, "too many open pairs from your address, try again later"),
    "pairs_network": (429, "too many open pairs from your network, try again later"),
}
