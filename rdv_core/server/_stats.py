"""What the server reports about itself: the path a pair took, and stats snapshots.

These are plain values: the core (:mod:`rdv_core.server._core`) and the relayer
(:mod:`rdv_core.server._relay`) fill them, ``/metrics`` (:mod:`rdv_core.server._metrics`),
the TUI and :class:`~rdv_core.server.PairHandler` hooks read them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["PairPath", "PairStats", "ServerStats"]


class PairPath(enum.Enum):
    """Where a matched pair's bytes go (docs/PROTOCOL.md section 8).

    Only :attr:`RELAYED` pairs cost the server bandwidth; a pair that ends while still
    :attr:`PENDING` (dialer closed, protocol error, shutdown) never relayed a byte.
    """

    #: Waiting for the dialer's command line (or for an ``on_match`` hook).
    PENDING = "pending"
    #: The dialer reported ``OTHER``: the peers went direct, the server closed both conns.
    P2P = "p2p"
    #: The dialer sent ``CONTINUE``: the server relays.
    RELAYED = "relayed"
    #: The dialer picked the relay and ``PairHandler.on_relay`` refused it: closed.
    RELAY_REFUSED = "relay refused"


@dataclass(frozen=True, slots=True)
class PairStats:
    """A snapshot of one matched pair.

    Attributes:
        pair_id: Unique per server, counting from 1.
        token: The rendezvous token.
        dialer: The dialer's observed (else TCP peer) address.
        accepter: The accepter's observed (else TCP peer) address.
        started_t: Server clock seconds when the pair was matched.
        path: Pending (waiting for D's command), p2p, relayed or relay refused.
        bytes_dialer_to_accepter: Bytes relayed from D to A.
        bytes_accepter_to_dialer: Bytes relayed from A to D.
    """

    pair_id: int
    token: str
    dialer: str
    accepter: str
    started_t: float
    path: PairPath
    bytes_dialer_to_accepter: int
    bytes_accepter_to_dialer: int

    @property
    def relayed(self) -> bool | None:
        """None while waiting for D's command, True once relaying, False otherwise.

        Kept from before :attr:`path` existed: readers (the TUI's server view) use it.
        """
        if self.path is PairPath.PENDING:
            return None
        return self.path is PairPath.RELAYED


@dataclass(frozen=True, slots=True)
class ServerStats:
    """A snapshot of the server's state and counters.

    Attributes:
        lobby: Requests waiting in the lobby.
        pairs: Open pairs (waiting for D's command, or relaying).
        pairs_total: Pairs matched since start.
        p2p_total: Pairs whose dialer reported ``OTHER`` (went direct).
        relay_total: Pairs whose dialer picked the relay.
        bytes_relayed: Bytes relayed both ways, open pairs included.
        rejects_by_status: Error responses by status (section 3 and 5 errors).
        lobby_timeouts_total: ``408`` answers.
        replaced_total: ``409`` answers.
        lobby_abandoned_total: Lobby clients that closed or dropped their conn before a
            peer came (given up, not refused: not in ``rejects_by_status``).
        lobby_refused_by_limit: Requests refused by a lobby cap (``total``, ``address``,
            ``network``) or a pair cap (``pairs_address``, ``pairs_network``), and waiting
            ones evicted to share a full lobby (``evicted``); also in ``rejects_by_status``.
        closed: True after :meth:`RdvServer.close`.
    """

    lobby: int
    pairs: list[PairStats]
    pairs_total: int
    p2p_total: int
    relay_total: int
    bytes_relayed: int
    rejects_by_status: dict[int, int]
    lobby_timeouts_total: int = 0
    replaced_total: int = 0
    closed: bool = False
    lobby_abandoned_total: int = 0
    lobby_refused_by_limit: dict[str, int] = field(default_factory=dict)
