"""The rdv server core: admission, the lobby rules, stats and shutdown.

It knows nothing of HTTP frameworks. A *front* (:mod:`._native` for ``rdv serve``,
:mod:`._aiohttp` to mount rdv in an aiohttp app) parses and checks the request
(docs/PROTOCOL.md section 3) with :meth:`RdvServer.check`, the one decision both fronts
share, then hands the accepted request and its transport to :meth:`RdvServer.admit`.
From then on the core owns the conn, as a :class:`~rdv_core.server._peer.Peer` that
reports back through callbacks:

- the lobby holds one slot per token; a lobby conn receives no bytes until its ``101``;
  a lobby client that sends a byte or closes gets ``400`` and loses its slot; a newer
  request with the same token and method evicts the older one (``409``); an optional
  lobby timeout answers ``408``, a receiver whose code's pair already met gets ``410``
  soon (:mod:`._used_codes`; section 5);
- when the opposite method arrives, :class:`~rdv_core.server._pairing.Pairing` takes both
  conns (hooks, then a :class:`~rdv_core.server._relay.Relayer`);
- :meth:`RdvServer.close` answers ``503`` to lobby clients and closes every pair.

Applications wrap pairs with a :class:`PairHandler` (per-pair auth, rate limits,
monitoring) and watch :mod:`rdv_core.events` through ``on_event``. The slots live in
:mod:`._lobby`, the counters and event output in :mod:`._tally`, the caps' refusals in
:mod:`._refusals`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Final

from rdv_core import events as ev
from rdv_core import wire
from rdv_core.events import Clock, EventCallback
from rdv_core.server._handler import PairHandler, PeerInfo, Reject, call_on_join
from rdv_core.server._lobby import DEFAULT_LOBBY_LIMITS, Lobby, LobbyLimits
from rdv_core.server._observed import HeaderGetter, ObservedAddrFunc, peer_address
from rdv_core.server._open_pairs import OpenPairs
from rdv_core.server._pairing import IDLE_VIOLATION, SHUTTING_DOWN, Pairing
from rdv_core.server._peer import LobbyProtocol, Peer, PeerCallbacks, PeerState
from rdv_core.server._pipes import PipePool
from rdv_core.server._refusals import CapRefusals
from rdv_core.server._relay import DEFAULT_BUFFER_SIZE, Relayer, SharedBuffer
from rdv_core.server._splice import splice_wanted
from rdv_core.server._stats import PairPath, PairStats, ServerStats
from rdv_core.server._tally import Tally
from rdv_core.server._used_codes import USED_CODE, USED_CODE_WAIT_S, UsedCodes
from rdv_core.wire import ACCEPT, DIAL, Addr, Head, RdvRequest, RequestRejected

# The hook API and the stats live in their own modules; many importers (tests, the TUI)
# take them from here, so they stay re-exported.
__all__ = [
    "PairHandler",
    "PairPath",
    "PairStats",
    "Peer",
    "PeerInfo",
    "RdvServer",
    "Reject",
    "ServerStats",
]

log = logging.getLogger("rdv.server")

#: Section 5 bodies (no trailing newline: the body ends at connection close).
REPLACED: Final = "replaced by another conn"
NO_PEER: Final = "no matching peer found"
#: Section 3 body for requests after shutdown (the front answers it).
CLOSED: Final = "rdv is closed"
#: How long :meth:`RdvServer.close` waits for conns to finish closing before aborting them.
CLOSE_GRACE_S: Final = 5.0


class RdvServer:
    """Lobby, matching and relay, independent of any HTTP front.

    Args:
        lobby_timeout: Seconds a request may wait for its peer (``408``); None: forever.
        idle_timeout: Seconds without bytes in either direction after which a pair is
            closed (also bounds the wait for D's command); None: never.
        observed_addr: ``(tcp_peer, get_header) -> Addr | None``; default: the TCP peer
            address (see :mod:`rdv_core.server._observed` for trusted proxies).
        handler: Hooks around requests and pairs.
        on_event: Receives every server event.
        buffer_size: Relay read size (one buffer shared by all pairs).
        lobby_limits: Caps on waiting requests, in total, per source address and per
            network (:class:`LobbyLimits`; ``LobbyLimits.unlimited()`` for none).
        splice: Relay plain TCP pairs with splice(2) (Linux; :mod:`._splice`); None:
            yes unless the environment sets ``RDV_RELAY_SPLICE=0``. False: always the
            copy relay.
    """

    def __init__(
        self,
        lobby_timeout: float | None = None,
        idle_timeout: float | None = None,
        observed_addr: ObservedAddrFunc | None = None,
        handler: PairHandler | None = None,
        on_event: EventCallback | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        lobby_limits: LobbyLimits = DEFAULT_LOBBY_LIMITS,
        splice: bool | None = None,
    ) -> None:
        if lobby_timeout is not None and lobby_timeout <= 0:
            raise ValueError("lobby_timeout must be positive")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self.lobby_timeout = lobby_timeout
        self._observed = observed_addr or peer_address
        self._tally = Tally(on_event)
        self._lobby = Lobby(lobby_limits)
        self._caps = CapRefusals(self._tally, self._lobby, self._reject, self._leave_lobby)
        self._open_pairs = OpenPairs()
        self._pairing = Pairing(
            self._tally,
            SharedBuffer(buffer_size),
            idle_timeout,
            is_closed=lambda: self.closed,
            place=self._place,
            pipes=PipePool(buffer_size) if splice_wanted(splice) else None,
            used=UsedCodes(),
        )
        #: Seconds a receiver with a used code waits for a sender before its ``410``.
        self.used_code_wait = USED_CODE_WAIT_S
        self._pairing.handler = handler
        self._live: set[Peer] = set()
        self._all_gone: asyncio.Event | None = None
        # One for all peers: what they report goes to the lobby rules below.
        self._peer_callbacks = PeerCallbacks(
            on_gone=self._forget,
            on_lobby_violation=self._kick,
            on_pending_violation=self._pairing.pending_violation,
        )
        self.closed = False

    @property
    def handler(self) -> PairHandler | None:
        """The hooks around requests and pairs (may be replaced at any time)."""
        return self._pairing.handler

    @handler.setter
    def handler(self, handler: PairHandler | None) -> None:
        self._pairing.handler = handler

    @property
    def lobby_limits(self) -> LobbyLimits:
        """The caps on waiting requests (checked as each request would enter the lobby)."""
        return self._lobby.limits

    @lobby_limits.setter
    def lobby_limits(self, limits: LobbyLimits) -> None:
        self._lobby.limits = limits

    @property
    def observed_addr(self) -> ObservedAddrFunc:
        """How a request's observed address is found (a front asks it who is a proxy)."""
        return self._observed

    @property
    def idle_timeout(self) -> float | None:
        """Seconds without bytes after which a pair is closed (for pairs matched later)."""
        return self._pairing.idle_timeout

    @idle_timeout.setter
    def idle_timeout(self, idle_timeout: float | None) -> None:
        self._pairing.idle_timeout = idle_timeout

    @property
    def on_event(self) -> EventCallback | None:
        """Receives every server event (may be replaced at any time)."""
        return self._tally.on_event

    @on_event.setter
    def on_event(self, on_event: EventCallback | None) -> None:
        self._tally.on_event = on_event

    @property
    def clock(self) -> Clock:
        """The clock of the server's events."""
        return self._tally.clock

    @property
    def _pairs(self) -> dict[int, Relayer]:
        return self._pairing.pairs

    @property
    def _pending_matches(self) -> dict[int, tuple[Peer, Peer]]:
        return self._pairing.pending

    # ----- public API

    def observe(self, remote: Addr | None, get_header: HeaderGetter) -> Addr | None:
        """The observed address to report for a request."""
        return self._observed(remote, get_header)

    def check(self, head: Head, prefix: str, remote: Addr | None) -> RdvRequest | RequestRejected:
        """Decide on an rdv request head: admit it, or refuse it with a section 3 error.

        The one decision both fronts make (they only adapt transports and HTTP
        frameworks): after :meth:`close` every request gets ``503`` :data:`CLOSED`,
        otherwise :func:`rdv_core.wire.check_request` judges the head under ``prefix``.
        A refusal is counted (stats and a ``Rejected`` event) here, so the front only
        frames it: ``http_level`` ones as Go's bare pre-handler error and close, the others
        as a plain response whose body is ``message`` plus a newline.

        Returns:
            The checked request, to pass to :meth:`admit`, or the refusal to answer.
        """
        try:
            if self.closed:
                raise RequestRejected(CLOSED, 503)
            request = wire.check_request(head, prefix)
        except RequestRejected as exc:
            self.count_reject(exc.status, exc.message, remote, head.method)
            return exc
        return request

    def admit(
        self,
        request: RdvRequest,
        transport: asyncio.Transport,
        remote: Addr | None,
        *,
        trailing: bytes = b"",
        release: Callable[[BaseException | None], None] | None = None,
        proxied: bool = False,
    ) -> Peer:
        """Take over the conn of a request that passed every section 3 check.

        Args:
            request: The checked request.
            transport: Its transport; the core sets its own protocols on it.
            remote: The TCP peer address, or the client's from a PROXY header.
            proxied: ``remote`` came from a trusted PROXY header (docs/PROTOCOL.md section
                14): it is the observed address, forwarding headers are not consulted.
            trailing: Bytes that followed the request head (a violation: ``400``).
            release: Called once with the close exception when the conn is closed.

        Returns:
            The conn as the core holds it (for :meth:`cut`).
        """
        try:
            if proxied:
                observed = None if remote is None else remote.unmapped()
            else:
                observed = self._observed(remote, request.head.get_joined)
        except Exception:
            log.exception("observed-address function failed: omitting the address")
            observed = None
        info = PeerInfo(
            request.method,
            request.token,
            remote,
            observed,
            request.self_addrs,
            tuple(request.head.headers),
        )
        joined = asyncio.get_running_loop().time()
        peer = Peer(info, transport, self._peer_callbacks, release, joined)
        self._live.add(peer)
        transport.set_protocol(LobbyProtocol(peer))
        self._tally.emit_peer(
            ev.PeerJoined,
            info,
            observed_addr=None if observed is None else str(observed),
            self_addrs=tuple(str(a) for a in info.self_addrs),
        )
        if self.closed:
            self._reject(peer, 503, SHUTTING_DOWN)
            return peer
        if trailing:
            self._tally.count_reject(400)
            self._tally.emit_peer(ev.LobbyLeft, info, reason="sent data")
            peer.state = PeerState.KICKED
            peer.fail(400, IDLE_VIOLATION)
            return peer
        refusal = call_on_join(self.handler, info)
        if refusal is not None:
            self._reject(peer, refusal.status, refusal.reason)
            return peer
        self._place(peer)
        return peer

    def cut(self, peer: Peer) -> None:
        """End a conn its front gives up (aiohttp cancelled the handler holding it: the
        app's shutdown, a middleware's timeout): ``503`` in the lobby, its pair reset
        (docs/PROTOCOL.md sections 5 and 8). Nothing once the conn is gone."""
        if self._lobby.get(peer.info.token) is peer:
            self._leave_lobby(peer, None)
            self._reject(peer, 503, SHUTTING_DOWN)
        elif peer.state is PeerState.PAIRED:
            self._pairing.cut(peer)

    def stats(self) -> ServerStats:
        """A snapshot of the lobby, the open pairs and the counters."""
        tally = self._tally
        pairs = self._pairing.stats()
        live_bytes = sum(p.bytes_dialer_to_accepter + p.bytes_accepter_to_dialer for p in pairs)
        return ServerStats(
            lobby=len(self._lobby),
            pairs=pairs,
            pairs_total=tally.pairs_total,
            p2p_total=tally.p2p_total,
            relay_total=tally.relay_total,
            bytes_relayed=tally.bytes_relayed_closed + live_bytes,
            rejects_by_status=dict(tally.rejects_by_status),
            lobby_timeouts_total=tally.lobby_timeouts_total,
            replaced_total=tally.replaced_total,
            lobby_abandoned_total=tally.lobby_abandoned_total,
            lobby_refused_by_limit=dict(tally.lobby_refused_by_limit),
            closed=self.closed,
        )

    def count_reject(
        self, status: int, reason: str, remote: Addr | None, method: str, token: str = ""
    ) -> None:
        """Record a section 3 error a front answered (for stats and events)."""
        self._tally.rejected(status, reason, remote, method, token)

    @property
    def open_conns(self) -> int:
        """Conns the core owns (lobby and pairs) that are not closed yet."""
        return len(self._live)

    async def close(self, drain_s: float = 0.0) -> None:
        """Shut down: ``503`` to lobby clients, every pair reset, new requests refused.

        ``drain_s``: first let open pairs end on their own for up to that long (or until
        :meth:`stop_draining`). Then waits (a few seconds at most) until every conn the
        core owns is closed.
        """
        if not self.closed:
            self.closed = True
            pairing = self._pairing
            lobby, pairs = len(self._lobby), len(pairing.pairs) + len(pairing.pending)
            for peer in self._lobby.peers():
                self._leave_lobby(peer, None)
                self._tally.count_reject(503)
                peer.fail(503, SHUTTING_DOWN)
            if drain_s > 0:
                await pairing.drain(drain_s)
            pairing.close()
            self._tally.emit(ev.ServerClosed, lobby=lobby, pairs=pairs)
        if self._live:
            self._all_gone = asyncio.Event()
            try:
                async with asyncio.timeout(CLOSE_GRACE_S):
                    await self._all_gone.wait()
            except TimeoutError:
                log.warning("%d conns did not close in time: aborting them", len(self._live))
                for peer in list(self._live):
                    peer.transport.abort()
                await asyncio.sleep(0)

    def stop_draining(self) -> None:
        """Cut a :meth:`close` drain short: its open pairs are reset now."""
        self._pairing.stop_draining()

    async def __aenter__(self) -> RdvServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----- the lobby rules (docs/PROTOCOL.md section 5)

    def _place(self, peer: Peer) -> None:
        """Into the token's slot: wait, replace the same method, or match the other one."""
        self._open_pairs.release(peer)  # back from a match its partner spoilt
        limit = self._open_pairs.over_limit(self._lobby.limits, peer)
        if limit is not None:
            self._caps.refuse(peer, limit)  # its source holds its share of pairs
            return
        info = peer.info
        waiting = self._lobby.get(info.token)
        if waiting is None or waiting.info.method == info.method:
            limit = self._lobby.over_limit(peer, replacing=waiting)
            if limit == "total":
                victim = self._lobby.fair_share_victim(peer)
                if victim is not None:
                    self._caps.evict_for_room(victim)
                    limit = None
            if limit is not None:
                self._caps.refuse(peer, limit)
                return
            if waiting is not None:
                self._evict(waiting)
            self._enter_lobby(peer)
        else:
            self._leave_lobby(waiting, None)
            limit = self._open_pairs.over_limit(self._lobby.limits, waiting)
            if limit is not None:
                # Its source opened its share of pairs while it waited: the newcomer,
                # within its own, takes the slot.
                self._caps.refuse(waiting, limit)
                self._place(peer)
                return
            self._open_pairs.add(waiting, peer)
            if info.method == DIAL:
                self._pairing.match(peer, waiting)
            else:
                self._pairing.match(waiting, peer)

    def _enter_lobby(self, peer: Peer) -> None:
        used = self._pairing.used
        now = asyncio.get_running_loop().time()
        if peer.info.method == ACCEPT and used is not None and used.used(peer.info.token, now):
            # A receiver with a code whose pair met: told soon, not at the lobby timeout
            # (docs/PROTOCOL.md section 5, used codes); a sender may still come meanwhile.
            wait = min(self.used_code_wait, self.lobby_timeout or self.used_code_wait)
            self._lobby.enter(peer, wait, self._used_code_timed_out)
            return
        self._lobby.enter(peer, self.lobby_timeout, self._lobby_timed_out)

    def _leave_lobby(self, peer: Peer, reason: str | None) -> None:
        """Remove from the lobby (``reason`` None: silently, e.g. when matched)."""
        if self._lobby.leave(peer) and reason is not None:
            self._tally.emit_peer(ev.LobbyLeft, peer.info, reason=reason)

    def _kick(self, peer: Peer, reason: str) -> None:
        if peer.state is not PeerState.LOBBY:
            return
        peer.state = PeerState.KICKED
        self._leave_lobby(peer, reason)
        if reason == "closed":
            # A client that gave up (its timeout, ^C) is not refused by the server: the
            # 400 is still written, as the reference does, but counted apart.
            self._tally.lobby_abandoned_total += 1
        else:
            self._tally.count_reject(400)
        peer.fail(400, IDLE_VIOLATION)

    def _evict(self, peer: Peer) -> None:
        self._leave_lobby(peer, None)
        peer.state = PeerState.REPLACED
        self._tally.replaced_total += 1
        self._tally.count_reject(409)
        self._tally.emit_peer(ev.Replaced, peer.info)
        peer.fail(409, REPLACED)

    def _lobby_timed_out(self, peer: Peer) -> None:
        peer.timer = None
        if peer.state is not PeerState.LOBBY:
            return
        self._leave_lobby(peer, None)
        peer.state = PeerState.TIMED_OUT
        self._tally.lobby_timeouts_total += 1
        self._tally.count_reject(408)
        self._tally.emit_peer(ev.LobbyTimedOut, peer.info)
        peer.fail(408, NO_PEER)

    def _used_code_timed_out(self, peer: Peer) -> None:
        peer.timer = None
        if peer.state is PeerState.LOBBY:
            self._leave_lobby(peer, None)
            self._reject(peer, 410, USED_CODE)

    def _reject(self, peer: Peer, status: int, reason: str) -> None:
        peer.state = PeerState.REJECTED
        # The token, as every other lobby event names it: an operator reading a 410 (a
        # used code, docs/PROTOCOL.md section 5) could not tell which code came back.
        self.count_reject(status, reason, peer.info.remote, peer.info.method, peer.info.token)
        peer.fail(status, reason)

    def _forget(self, peer: Peer) -> None:
        # Peer.lost marked it GONE already: whether it still holds its slot (a reset
        # conn sends no EOF, so nothing kicked it) is the lobby's to say.
        if self._lobby.leave(peer):
            self._tally.lobby_abandoned_total += 1
            self._tally.emit_peer(ev.LobbyLeft, peer.info, reason="disconnected")
        self._open_pairs.release(peer)
        self._live.discard(peer)
        if not self._live and self._all_gone is not None:
            self._all_gone.set()
