"""The rdv server core: lobby, matching, relay bookkeeping, stats and events.

It knows nothing of HTTP frameworks. A *front* (:mod:`._native` for ``rdv serve``,
:mod:`._aiohttp` to mount rdv in an aiohttp app) parses and checks the request
(docs/PROTOCOL.md section 3) with :meth:`RdvServer.check`, the one decision both fronts
share, then hands the accepted request and its transport to :meth:`RdvServer.admit`.
From then on the core owns the conn, as a :class:`~rdv_core.server._peer.Peer` that
reports back through callbacks:

- the lobby holds one slot per token; a lobby conn receives no bytes until its ``101``;
  a lobby client that sends a byte or closes gets ``400`` and loses its slot; a newer
  request with the same token and method evicts the older one (``409``); an optional
  lobby timeout answers ``408`` (section 5);
- when the opposite method arrives, a :class:`~rdv_core.server._relay.Relayer` takes both conns;
- :meth:`RdvServer.close` answers ``503`` to lobby clients and closes every pair.

Applications wrap pairs with a :class:`PairHandler` (per-pair auth, rate limits,
monitoring) and watch :mod:`rdv_core.events` through ``on_event``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Final

from rdv_core import events as ev
from rdv_core import wire
from rdv_core.events import Clock, EventCallback
from rdv_core.server._handler import (
    PairHandler,
    PeerInfo,
    Reject,
    call_on_end,
    call_on_join,
    call_on_match,
    match_decision,
)
from rdv_core.server._observed import HeaderGetter, ObservedAddrFunc, peer_address
from rdv_core.server._peer import LobbyProtocol, Peer, PeerCallbacks, PeerState, PendingProtocol
from rdv_core.server._relay import DEFAULT_BUFFER_SIZE, Relayer, SharedBuffer
from rdv_core.server._stats import PairPath, PairStats, ServerStats
from rdv_core.wire import DIAL, Addr, Head, RdvRequest, RequestRejected

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
IDLE_VIOLATION: Final = "conn must idle while waiting for response header"
REPLACED: Final = "replaced by another conn"
NO_PEER: Final = "no matching peer found"
SHUTTING_DOWN: Final = "rdv server shutting down, try again"
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
    """

    def __init__(
        self,
        lobby_timeout: float | None = None,
        idle_timeout: float | None = None,
        observed_addr: ObservedAddrFunc | None = None,
        handler: PairHandler | None = None,
        on_event: EventCallback | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        if lobby_timeout is not None and lobby_timeout <= 0:
            raise ValueError("lobby_timeout must be positive")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self.lobby_timeout = lobby_timeout
        self.idle_timeout = idle_timeout
        self._observed = observed_addr or peer_address
        self.handler = handler
        self.on_event = on_event
        self.clock = Clock()
        self._buffer = SharedBuffer(buffer_size)
        self._lobby: dict[str, Peer] = {}
        self._pairs: dict[int, Relayer] = {}
        self._pending_matches: dict[int, tuple[Peer, Peer]] = {}
        self._live: set[Peer] = set()
        self._pair_ids = itertools.count(1)
        self._all_gone: asyncio.Event | None = None
        # One for all peers: what they report goes to the lobby rules below.
        self._peer_callbacks = PeerCallbacks(
            on_gone=self._forget,
            on_lobby_violation=self._kick,
            on_pending_violation=self._pending_violation,
        )
        self.closed = False
        self.pairs_total = 0
        self.p2p_total = 0
        self.relay_total = 0
        self.bytes_relayed_closed = 0
        self.rejects_by_status: dict[int, int] = {}
        self.lobby_timeouts_total = 0
        self.replaced_total = 0

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
    ) -> None:
        """Take over the conn of a request that passed every section 3 check.

        Args:
            request: The checked request.
            transport: Its transport; the core sets its own protocols on it.
            remote: The TCP peer address.
            trailing: Bytes that followed the request head (a violation: ``400``).
            release: Called once with the close exception when the conn is closed.
        """
        try:
            observed = self._observed(remote, request.head.get)
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
        self._emit_peer(
            ev.PeerJoined,
            info,
            observed_addr=None if observed is None else str(observed),
            self_addrs=tuple(str(a) for a in info.self_addrs),
        )
        if self.closed:
            self._reject(peer, 503, SHUTTING_DOWN)
            return
        if trailing:
            self._count_reject(400)
            self._emit_peer(ev.LobbyLeft, info, reason="sent data")
            peer.state = PeerState.KICKED
            peer.fail(400, IDLE_VIOLATION)
            return
        refusal = call_on_join(self.handler, info)
        if refusal is not None:
            self._reject(peer, refusal.status, refusal.reason)
            return
        self._place(peer)

    def _place(self, peer: Peer) -> None:
        """Into the token's slot: wait, replace the same method, or match the other one."""
        info = peer.info
        waiting = self._lobby.get(info.token)
        if waiting is None:
            self._enter_lobby(peer)
        elif waiting.info.method == info.method:
            self._evict(waiting)
            self._enter_lobby(peer)
        else:
            self._leave_lobby(waiting, None)
            if info.method == DIAL:
                self._match(peer, waiting)
            else:
                self._match(waiting, peer)

    def stats(self) -> ServerStats:
        """A snapshot of the lobby, the open pairs and the counters."""
        pairs = [self._pair_stats(r) for r in self._pairs.values()]
        live_bytes = sum(p.bytes_dialer_to_accepter + p.bytes_accepter_to_dialer for p in pairs)
        return ServerStats(
            lobby=len(self._lobby),
            pairs=pairs,
            pairs_total=self.pairs_total,
            p2p_total=self.p2p_total,
            relay_total=self.relay_total,
            bytes_relayed=self.bytes_relayed_closed + live_bytes,
            rejects_by_status=dict(self.rejects_by_status),
            lobby_timeouts_total=self.lobby_timeouts_total,
            replaced_total=self.replaced_total,
            closed=self.closed,
        )

    def count_reject(self, status: int, reason: str, remote: Addr | None, method: str) -> None:
        """Record a section 3 error a front answered (for stats and events)."""
        self._count_reject(status)
        self._emit(
            ev.Rejected,
            status=status,
            reason=reason,
            remote="?" if remote is None else str(remote),
            method=method,
        )

    @property
    def open_conns(self) -> int:
        """Conns the core owns (lobby and pairs) that are not closed yet."""
        return len(self._live)

    async def close(self) -> None:
        """Shut down: ``503`` to lobby clients, every pair closed, new requests refused.

        Waits (at most a few seconds) until every conn the core owns is closed.
        """
        if not self.closed:
            self.closed = True
            lobby, pairs = len(self._lobby), len(self._pairs) + len(self._pending_matches)
            for peer in list(self._lobby.values()):
                self._leave_lobby(peer, None)
                self._count_reject(503)
                peer.fail(503, SHUTTING_DOWN)
            pending = list(self._pending_matches.values())
            self._pending_matches.clear()
            for dialer, accepter in pending:
                for peer in (dialer, accepter):
                    peer.fail(503, SHUTTING_DOWN)
            for relayer in list(self._pairs.values()):
                relayer.close("shutdown")
            self._emit(ev.ServerClosed, lobby=lobby, pairs=pairs)
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

    async def __aenter__(self) -> RdvServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----- lobby

    def _enter_lobby(self, peer: Peer) -> None:
        peer.state = PeerState.LOBBY
        self._lobby[peer.info.token] = peer
        if self.lobby_timeout is not None:
            peer.timer = asyncio.get_running_loop().call_later(
                self.lobby_timeout, self._lobby_timed_out, peer
            )

    def _leave_lobby(self, peer: Peer, reason: str | None) -> None:
        """Remove from the lobby (``reason`` None: silently, e.g. when matched)."""
        if peer.timer is not None:
            peer.timer.cancel()
            peer.timer = None
        if self._lobby.get(peer.info.token) is not peer:
            return
        del self._lobby[peer.info.token]
        if reason is not None:
            self._emit_peer(ev.LobbyLeft, peer.info, reason=reason)

    def _kick(self, peer: Peer, reason: str) -> None:
        if peer.state is not PeerState.LOBBY:
            return
        peer.state = PeerState.KICKED
        self._leave_lobby(peer, reason)
        self._count_reject(400)
        peer.fail(400, IDLE_VIOLATION)

    def _evict(self, peer: Peer) -> None:
        self._leave_lobby(peer, None)
        peer.state = PeerState.REPLACED
        self.replaced_total += 1
        self._count_reject(409)
        self._emit_peer(ev.Replaced, peer.info)
        peer.fail(409, REPLACED)

    def _lobby_timed_out(self, peer: Peer) -> None:
        peer.timer = None
        if peer.state is not PeerState.LOBBY:
            return
        self._leave_lobby(peer, None)
        peer.state = PeerState.TIMED_OUT
        self.lobby_timeouts_total += 1
        self._count_reject(408)
        self._emit_peer(ev.LobbyTimedOut, peer.info)
        peer.fail(408, NO_PEER)

    def _reject(self, peer: Peer, status: int, reason: str) -> None:
        peer.state = PeerState.REJECTED
        self.count_reject(status, reason, peer.info.remote, peer.info.method)
        peer.fail(status, reason)

    def _forget(self, peer: Peer) -> None:
        if peer.state is PeerState.LOBBY:
            self._leave_lobby(peer, "disconnected")
        self._live.discard(peer)
        if not self._live and self._all_gone is not None:
            self._all_gone.set()

    # ----- pairs

    def _match(self, dialer: Peer, accepter: Peer) -> None:
        pair_id = next(self._pair_ids)
        dialer.state = accepter.state = PeerState.PAIRED
        self.pairs_total += 1
        lobby_s = asyncio.get_running_loop().time() - min(dialer.joined, accepter.joined)
        self._emit(
            ev.PairMatched,
            pair_id=pair_id,
            token=dialer.info.token,
            dialer=dialer.info.label,
            accepter=accepter.info.label,
            lobby_s=lobby_s,
        )
        verdict = call_on_match(self.handler, pair_id, dialer.info, accepter.info)
        if verdict is None or isinstance(verdict, Reject):
            self._start_pair(pair_id, dialer, accepter, reject=verdict)
            return
        self._pending_matches[pair_id] = (dialer, accepter)
        for peer in (dialer, accepter):
            # Until the hook decides, a byte or EOF from either is a violation.
            peer.transport.set_protocol(PendingProtocol(peer, pair_id))
        task = asyncio.ensure_future(verdict)
        task.add_done_callback(lambda t: self._on_match_decided(t, pair_id, dialer, accepter))

    def _on_match_decided(
        self, task: asyncio.Future[None], pair_id: int, dialer: Peer, accepter: Peer
    ) -> None:
        if self._pending_matches.pop(pair_id, None) is None:
            return
        if dialer.state is PeerState.GONE or accepter.state is PeerState.GONE or self.closed:
            for peer in (dialer, accepter):
                peer.fail(
                    503 if self.closed else 400, SHUTTING_DOWN if self.closed else IDLE_VIOLATION
                )
            return
        reject = Reject(503, SHUTTING_DOWN) if task.cancelled() else match_decision(task)
        self._start_pair(pair_id, dialer, accepter, reject=reject)

    def _pending_violation(self, pair_id: int, culprit: Peer) -> None:
        """A peer sent a byte or closed while ``on_match`` decided: it is kicked (400);
        its partner, which did nothing wrong, goes back to the token's slot."""
        pair = self._pending_matches.pop(pair_id, None)
        if pair is None:
            return
        self.pairs_total -= 1  # the match never happened
        self._count_reject(400)
        culprit.state = PeerState.KICKED
        culprit.fail(400, IDLE_VIOLATION)
        partner = pair[1] if pair[0] is culprit else pair[0]
        if partner.state is PeerState.GONE or partner.transport.is_closing():
            return
        partner.transport.set_protocol(LobbyProtocol(partner))
        self._place(partner)

    def _start_pair(
        self, pair_id: int, dialer: Peer, accepter: Peer, reject: Reject | None = None
    ) -> None:
        relayer = Relayer(
            pair_id,
            dialer,
            accepter,
            buffer=self._buffer,
            idle_timeout=self.idle_timeout,
            started_t=self.clock(),
            on_pair_ended=self._pair_ended,
            on_relay_started=self._relay_started,
        )
        self._pairs[pair_id] = relayer
        if reject is not None:
            for peer in (dialer, accepter):
                self.count_reject(reject.status, reject.reason, peer.info.remote, peer.info.method)
            relayer.reject(reject.status, reject.reason)
            return
        d, a = dialer.info, accepter.info
        relayer.start(  # each learns the other's addrs and offer (docs/PROTOCOL.md 14.1)
            wire.upgrade_response_for(d.observed, a.self_addrs, a.observed, a.headers),
            wire.upgrade_response_for(a.observed, d.self_addrs, d.observed, d.headers),
        )

    def _relay_started(self, relayer: Relayer) -> None:
        if self.handler is not None:
            try:
                self.handler.on_relay(relayer.pair_id)
            except Reject as exc:
                relayer.refuse_relay(f"relay rejected {exc.status}: {exc.reason}")
                return
        self.relay_total += 1
        self._emit(ev.RelayStarted, pair_id=relayer.pair_id)

    def _pair_ended(self, relayer: Relayer, reason: str) -> None:
        self._pairs.pop(relayer.pair_id, None)
        if relayer.path is PairPath.P2P and relayer.other_addr is not None:
            self.p2p_total += 1
            self._emit(ev.P2PReported, pair_id=relayer.pair_id, addr=relayer.other_addr)
        self.bytes_relayed_closed += relayer.bytes_d2a + relayer.bytes_a2d
        stats = self._pair_stats(relayer)
        self._emit(
            ev.RelayEnded,
            pair_id=relayer.pair_id,
            dialer_to_accepter=relayer.bytes_d2a,
            accepter_to_dialer=relayer.bytes_a2d,
            duration_s=relayer.duration_s,
            reason=reason,
            relayed=relayer.path is PairPath.RELAYED,
        )
        call_on_end(self.handler, stats, reason)

    def _pair_stats(self, relayer: Relayer) -> PairStats:
        return relayer.stats(
            relayer.dialer.info.token, relayer.dialer.info.label, relayer.accepter.info.label
        )

    # ----- events and counters

    def _count_reject(self, status: int) -> None:
        self.rejects_by_status[status] = self.rejects_by_status.get(status, 0) + 1

    def _emit_peer(self, cls: Callable[..., ev.Event], info: PeerInfo, **fields: object) -> None:
        """Emit an event about one request (they all name its method, token and remote)."""
        remote = "?" if info.remote is None else str(info.remote)
        self._emit(cls, method=info.method, token=info.token, remote=remote, **fields)

    def _emit(self, cls: Callable[..., ev.Event], **fields: object) -> None:
        if self.on_event is None:
            return
        event = cls(t=self.clock(), **fields)
        try:
            self.on_event(event)
        except Exception:
            log.exception("on_event callback failed for %s", type(event).__name__)
