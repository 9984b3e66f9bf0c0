"""The lobby's bookkeeping: one slot per token, and each waiting peer's timer.

The rules (who is kicked, evicted, timed out or matched; docs/PROTOCOL.md section 5) are
the core's (:mod:`._core`); this module only keeps the slots consistent with them. It
reads like a mapping from token to the :class:`~rdv_core.server._peer.Peer` waiting there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from rdv_core.server._peer import Peer, PeerState

__all__ = ["Lobby"]


class Lobby:
    """The waiting peers by token."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: dict[str, Peer] = {}

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

    def enter(self, peer: Peer, timeout: float | None, on_timeout: Callable[[Peer], None]) -> None:
        """Put ``peer`` in its token's slot (the caller emptied it) and arm its timer."""
        peer.state = PeerState.LOBBY
        self._slots[peer.info.token] = peer
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
        return True
