"""The server's counters and its event output: what :meth:`RdvServer.stats` and
``on_event`` see.

One object per server, shared by the lobby rules (:mod:`._core`) and the pairing
(:mod:`._pairing`), so each counts and emits in one place and an ``on_event`` callback
that raises never breaks a conn (it is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rdv_core import events as ev
from rdv_core.events import Clock, EventCallback
from rdv_core.server import _deploy_hints as hints
from rdv_core.server._handler import PeerInfo
from rdv_core.wire import Addr

__all__ = ["Tally"]

log = logging.getLogger("rdv.server")


class Tally:
    """Counters since start and the event callback of one server."""

    def __init__(self, on_event: EventCallback | None) -> None:
        self.on_event = on_event
        self.clock = Clock()
        self.pairs_total = 0
        self.p2p_total = 0
        self.relay_total = 0
        self.bytes_relayed_closed = 0
        self.rejects_by_status: dict[int, int] = {}
        self.lobby_timeouts_total = 0
        self.replaced_total = 0
        self.lobby_abandoned_total = 0
        self.lobby_refused_by_limit: dict[str, int] = {}
        #: A refusal that is the deployment's mistake is also a warning (server/_deploy_hints.py).
        self.hints = hints.Throttle()

    def count_reject(self, status: int) -> None:
        self.rejects_by_status[status] = self.rejects_by_status.get(status, 0) + 1

    def rejected(
        self, status: int, reason: str, remote: Addr | None, method: str, token: str = ""
    ) -> None:
        """Count an error response and emit its ``Rejected`` event."""
        self.count_reject(status)
        hints.warn(self.hints, reason, remote)
        self.emit(
            ev.Rejected,
            status=status,
            reason=reason,
            remote="?" if remote is None else str(remote),
            method=method,
            token=token,
        )

    def emit_peer(self, cls: Callable[..., ev.Event], info: PeerInfo, **fields: object) -> None:
        """Emit an event about one request (they all name its method, token and remote)."""
        remote = "?" if info.remote is None else str(info.remote)
        self.emit(cls, method=info.method, token=info.token, remote=remote, **fields)

    def emit(self, cls: Callable[..., ev.Event], **fields: object) -> None:
        if self.on_event is None:
            return
        event = cls(t=self.clock(), **fields)
        try:
            self.on_event(event)
        except Exception:
            log.exception("on_event callback failed for %s", type(event).__name__)
