"""Refusals by the caps (docs/PROTOCOL.md section 13): the bodies, the counts, and the
operator's warning, at most once a minute per cap.

The lobby rules (:mod:`._core`) decide *that* a cap refuses a request or that a full
lobby evicts one (:mod:`._lobby` says which); this module says it to the client, counts
it in ``rdv_lobby_refused_total`` and tells the operator without flooding the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from rdv_core.server._lobby import Limit, Lobby
from rdv_core.server._open_pairs import PAIR_CAP_BODIES
from rdv_core.server._peer import Peer
from rdv_core.server._tally import Tally

__all__ = ["CAP_BODIES", "CAP_WARNING_INTERVAL_S", "EVICTED", "CapRefusals"]

log = logging.getLogger("rdv.server")

#: Bodies of the lobby caps (docs/PROTOCOL.md section 13): ``503`` when full, else ``429``.
CAP_BODIES: Final[dict[Limit, tuple[int, str]]] = {
    "total": (503, "rdv lobby is full, try again later"),
    "address": (429, "too many requests waiting from your address, try again later"),
    "network": (429, "too many requests waiting from your network, try again later"),
    **PAIR_CAP_BODIES,
}
#: Body of a waiting request evicted to make room when the lobby is full (section 13).
EVICTED: Final = (
    "rdv lobby is full and your network holds the most waiting requests, try again later"
)
#: A cap that keeps refusing is logged at most once per this many seconds.
CAP_WARNING_INTERVAL_S: Final = 60.0


class CapRefusals:
    """Says a cap's refusal to the client, counts it, and warns the operator (throttled).

    Args:
        tally: The server's counters.
        lobby: The lobby (names a refused request's source in the warning).
        reject: Answers a peer with a status and a body (the core's, which counts it).
        leave: Takes a peer out of the lobby with a reason (for the eviction's event).
    """

    def __init__(
        self,
        tally: Tally,
        lobby: Lobby,
        reject: Callable[[Peer, int, str], None],
        leave: Callable[[Peer, str], None],
    ) -> None:
        self._tally = tally
        self._lobby = lobby
        self._reject = reject
        self._leave = leave
        self._warned: dict[str, tuple[float, int]] = {}

    def refuse(self, peer: Peer, limit: Limit) -> None:
        """A cap is reached: refuse ``peer`` and tell the operator (throttled)."""
        status, body = CAP_BODIES[limit]
        self._count(limit)
        self._reject(peer, status, body)
        refused = self._throttled(limit)
        if refused is not None:
            log.warning(
                "%s cap reached (%s, %s): refusing requests with %d%s",
                "pair" if limit in PAIR_CAP_BODIES else "lobby",
                limit,
                self._lobby.source(peer, limit),
                status,
                f" ({refused} more refused since the last warning)" if refused else "",
            )

    def evict_for_room(self, peer: Peer) -> None:
        """The lobby is full: ``peer``, the oldest request of the network holding the most,
        makes room for a request from a network holding fewer (section 13)."""
        self._leave(peer, "evicted")
        self._count("evicted")
        self._reject(peer, 503, EVICTED)
        evicted = self._throttled("evicted")
        if evicted is not None:
            log.warning(
                "lobby full: evicting the oldest requests of the network holding the most "
                "(%s) for requests from others%s",
                self._lobby.source(peer, "network"),
                f" ({evicted} more evicted since the last warning)" if evicted else "",
            )

    def _count(self, limit: str) -> None:
        by_limit = self._tally.lobby_refused_by_limit
        by_limit[limit] = by_limit.get(limit, 0) + 1

    def _throttled(self, what: str) -> int | None:
        """How many went unlogged since ``what`` was last logged, or None: not time yet."""
        now = asyncio.get_running_loop().time()
        last, quiet = self._warned.get(what, (-CAP_WARNING_INTERVAL_S, 0))
        if now - last < CAP_WARNING_INTERVAL_S:
            self._warned[what] = (last, quiet + 1)
            return None
        self._warned[what] = (now, 0)
        return quiet
