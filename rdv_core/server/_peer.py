"""One conn the server core owns, and the protocols it wears before its pair relays.

A :class:`Peer` knows its request (:class:`~rdv_core.server.PeerInfo`), its transport
and how to report to its owner: the :class:`PeerCallbacks` the core passes in. It never
sees :class:`~rdv_core.server.RdvServer` itself, so the lobby rules stay in the core
and a peer can be driven by anything that supplies the callbacks (docs/ARCHITECTURE.md
section 3).

Before its ``101`` a conn must idle (docs/PROTOCOL.md section 5): any byte or EOF from
it is a violation, which the protocols here report rather than judge.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass

from rdv_core import wire
from rdv_core.server._handler import PeerInfo

__all__ = ["LobbyProtocol", "Peer", "PeerCallbacks", "PeerState", "PendingProtocol"]


class PeerState(enum.Enum):
    """Where a peer is in its life; every state but LOBBY and PAIRED is final."""

    #: Waiting in its token's slot.
    LOBBY = "lobby"
    #: Matched: waiting for an ``on_match`` hook, for D's command, or relaying.
    PAIRED = "paired"
    #: Sent a byte or closed while it had to idle (``400``).
    KICKED = "kicked"
    #: Evicted by a newer request with the same token and method (``409``).
    REPLACED = "replaced"
    #: Waited for its peer longer than the lobby timeout (``408``).
    TIMED_OUT = "timed out"
    #: Refused by the server (shutting down) or a hook.
    REJECTED = "rejected"
    #: Its transport closed.
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class PeerCallbacks:
    """How peers and their protocols report to their owner (one object per server).

    Attributes:
        on_gone: The peer's transport closed (called once, before the front's release).
        on_lobby_violation: A lobby peer sent a byte (``"sent data"``) or EOF
            (``"closed"``); the reason is the one ``LobbyLeft`` events carry.
        on_pending_violation: ``(pair_id, peer)``: a peer sent a byte, EOF or closed
            while an async ``on_match`` hook decided on its pair.
    """

    on_gone: Callable[[Peer], None]
    on_lobby_violation: Callable[[Peer, str], None]
    on_pending_violation: Callable[[int, Peer], None]


class Peer:
    """One conn the core owns: in the lobby, then in a pair. Internal to server and relay."""

    __slots__ = (
        "_release",
        "callbacks",
        "info",
        "joined",
        "pair_id",
        "state",
        "timer",
        "transport",
    )

    def __init__(
        self,
        info: PeerInfo,
        transport: asyncio.Transport,
        callbacks: PeerCallbacks,
        release: Callable[[BaseException | None], None] | None,
        joined: float,
    ) -> None:
        self.info = info
        self.transport = transport
        self.callbacks = callbacks
        self._release = release
        self.joined = joined
        self.timer: asyncio.TimerHandle | None = None
        self.state = PeerState.LOBBY
        #: The pair it was last matched into (0: never matched).
        self.pair_id = 0

    def lost(self, exc: BaseException | None) -> None:
        """The transport closed: tell the owner and the front (once each)."""
        if self.state is PeerState.GONE:
            return
        self.state = PeerState.GONE
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.callbacks.on_gone(self)
        release, self._release = self._release, None
        if release is not None:
            release(exc)

    def fail(self, status: int, message: str) -> None:
        """Write a section 5 error and close."""
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(wire.build_upgrade_error(status, message))
        transport.close()


class LobbyProtocol(asyncio.Protocol):
    """A conn waiting in the lobby: any byte or EOF from it is a protocol violation."""

    __slots__ = ("_peer",)

    def __init__(self, peer: Peer) -> None:
        self._peer = peer

    def data_received(self, data: bytes) -> None:
        self._peer.callbacks.on_lobby_violation(self._peer, "sent data")

    def eof_received(self) -> bool:
        self._peer.callbacks.on_lobby_violation(self._peer, "closed")
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._peer.lost(exc)


class PendingProtocol(asyncio.Protocol):
    """Both conns of a pair while an async ``on_match`` hook decides."""

    __slots__ = ("_pair_id", "_peer")

    def __init__(self, peer: Peer, pair_id: int) -> None:
        self._peer = peer
        self._pair_id = pair_id

    def data_received(self, data: bytes) -> None:
        self._peer.callbacks.on_pending_violation(self._pair_id, self._peer)

    def eof_received(self) -> bool:
        self._peer.callbacks.on_pending_violation(self._pair_id, self._peer)
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._peer.callbacks.on_pending_violation(self._pair_id, self._peer)
        self._peer.lost(exc)
