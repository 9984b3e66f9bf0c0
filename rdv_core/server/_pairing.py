"""Matched pairs: the ``on_match`` hook's wait, then a :class:`Relayer` per pair.

The core (:mod:`._core`) hands over a dialer and an accepter whose token matched; from
then on this module owns them until the pair ends: it asks the hooks (an async
``on_match`` keeps both conns under :class:`~rdv_core.server._peer.PendingProtocol`),
starts the relay with the two ``101``s (docs/PROTOCOL.md sections 5 and 8), and counts
and reports the pair's end. A peer that misbehaves while the hook decides is kicked and
its partner goes back to the lobby through ``place``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Final

from rdv_core import events as ev
from rdv_core import wire
from rdv_core.server._handler import (
    PairHandler,
    Reject,
    call_on_end,
    call_on_match,
    match_decision,
)
from rdv_core.server._peer import LobbyProtocol, Peer, PeerState, PendingProtocol
from rdv_core.server._pipes import PipePool
from rdv_core.server._relay import Relayer, SharedBuffer
from rdv_core.server._relay_silence import SilenceSweep
from rdv_core.server._stats import PairPath, PairStats
from rdv_core.server._tally import Tally
from rdv_core.server._used_codes import UsedCodes

__all__ = ["IDLE_VIOLATION", "SHUTTING_DOWN", "Pairing"]

#: Section 5 bodies (no trailing newline: the body ends at connection close).
IDLE_VIOLATION: Final = "conn must idle while waiting for response header"
SHUTTING_DOWN: Final = "rdv server shutting down, try again"


class Pairing:
    """The pairs of one server, from the match to their end."""

    def __init__(
        self,
        tally: Tally,
        buffer: SharedBuffer,
        idle_timeout: float | None,
        is_closed: Callable[[], bool],
        place: Callable[[Peer], None],
        pipes: PipePool | None = None,
        used: UsedCodes | None = None,
    ) -> None:
        self.handler: PairHandler | None = None
        #: Session tokens whose pair met, for a receiver who comes back (PROTOCOL section 5).
        self.used = used
        self._tally = tally
        self._buffer = buffer
        #: The zero-copy relay's pipes (:mod:`._splice`); None: the copy relay only.
        self.pipes = pipes
        self.idle_timeout = idle_timeout
        self._is_closed = is_closed
        self._place = place
        self.pairs: dict[int, Relayer] = {}
        self._silence = SilenceSweep(self.pairs)
        self.pending: dict[int, tuple[Peer, Peer]] = {}
        #: RelayStarted events not written yet (pair id: the event's time).
        self._unreported: dict[int, float] = {}
        self._pair_ids = itertools.count(1)
        #: Set when the last pair ended or the drain is cut short (while :meth:`drain` waits).
        self._drained: asyncio.Event | None = None

    def match(self, dialer: Peer, accepter: Peer) -> None:
        pair_id = next(self._pair_ids)
        dialer.state = accepter.state = PeerState.PAIRED
        dialer.pair_id = accepter.pair_id = pair_id
        self._tally.pairs_total += 1
        lobby_s = asyncio.get_running_loop().time() - min(dialer.joined, accepter.joined)
        self._tally.emit(
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
        self.pending[pair_id] = (dialer, accepter)
        for peer in (dialer, accepter):
            # Until the hook decides, a byte or EOF from either is a violation.
            peer.transport.set_protocol(PendingProtocol(peer, pair_id))
        task = asyncio.ensure_future(verdict)
        task.add_done_callback(lambda t: self._on_match_decided(t, pair_id, dialer, accepter))

    def stats(self) -> list[PairStats]:
        return [self._pair_stats(r) for r in self.pairs.values()]

    async def drain(self, seconds: float) -> None:
        """Shutdown's first step, if asked: let the open pairs end on their own, for at most
        ``seconds`` or until :meth:`stop_draining` (no new pair forms: the server is closed).
        """
        if not self.pairs:
            return
        self._drained = asyncio.Event()
        try:
            async with asyncio.timeout(seconds):
                await self._drained.wait()
        except TimeoutError:
            pass
        finally:
            self._drained = None

    def stop_draining(self) -> None:
        if self._drained is not None:
            self._drained.set()

    def close(self) -> None:
        """Shutdown: ``503`` to pairs whose hook still decides, every relay closed."""
        pending = list(self.pending.values())
        self.pending.clear()
        for dialer, accepter in pending:
            for peer in (dialer, accepter):
                peer.fail(503, SHUTTING_DOWN)
        for relayer in list(self.pairs.values()):
            relayer.close("shutdown", reset=True)  # a FIN would read as the peer's end
        self._silence.close()

    def cut(self, peer: Peer) -> None:
        """End the pair of ``peer``, whose front gave its conn up, as the server's end:
        ``503`` to both while a hook decides, else both reset (docs/PROTOCOL.md section 8)."""
        pending = self.pending.get(peer.pair_id)
        if pending is not None and peer in pending:
            del self.pending[peer.pair_id]
            for each in pending:
                each.fail(503, SHUTTING_DOWN)
            return
        relayer = self.pairs.get(peer.pair_id)
        if relayer is not None and peer in (relayer.dialer, relayer.accepter):
            relayer.close("cut by the front", reset=True)

    def _on_match_decided(
        self, task: asyncio.Future[None], pair_id: int, dialer: Peer, accepter: Peer
    ) -> None:
        if self.pending.pop(pair_id, None) is None:
            return
        closed = self._is_closed()
        if dialer.state is PeerState.GONE or accepter.state is PeerState.GONE or closed:
            for peer in (dialer, accepter):
                peer.fail(503 if closed else 400, SHUTTING_DOWN if closed else IDLE_VIOLATION)
            return
        reject = Reject(503, SHUTTING_DOWN) if task.cancelled() else match_decision(task)
        self._start_pair(pair_id, dialer, accepter, reject=reject)

    def pending_violation(self, pair_id: int, culprit: Peer) -> None:
        """A peer sent a byte or closed while ``on_match`` decided: it is kicked (400);
        its partner, which did nothing wrong, goes back to the token's slot."""
        pair = self.pending.pop(pair_id, None)
        if pair is None:
            return
        self._tally.pairs_total -= 1  # the match never happened
        self._tally.count_reject(400)
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
            started_t=self._tally.clock(),
            on_pair_ended=self._pair_ended,
            on_relay_started=self._relay_started,
            pipes=self.pipes,
        )
        self.pairs[pair_id] = relayer
        if reject is not None:
            for peer in (dialer, accepter):
                self._tally.rejected(
                    reject.status, reject.reason, peer.info.remote, peer.info.method
                )
            relayer.reject(reject.status, reject.reason)
            return
        d, a = dialer.info, accepter.info
        if self.used is not None:
            self.used.add(d.token, asyncio.get_running_loop().time())
        relayer.start(
            # Each learns the other's addrs and extension offer (docs/PROTOCOL.md 16.1).
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
        self._tally.relay_total += 1
        self._silence.relay_started()  # a peer gone silent ends its pair (PROTOCOL 16.12)
        # The event (a JSONL line with --events, flushed) waits one loop turn: the
        # relayer forwards CONTINUE and the pair's first bytes first, since they are
        # fast start's first byte (docs/PROTOCOL.md 16.9). Its time stays the CONTINUE's.
        pair_id, t = relayer.pair_id, self._tally.clock()
        self._unreported[pair_id] = t
        asyncio.get_running_loop().call_soon(self._report_relay_started, pair_id)

    def _report_relay_started(self, pair_id: int) -> None:
        t = self._unreported.pop(pair_id, None)
        if t is not None:
            self._tally.emit(lambda **f: ev.RelayStarted(**{**f, "t": t}), pair_id=pair_id)

    def _pair_ended(self, relayer: Relayer, reason: str) -> None:
        self._report_relay_started(relayer.pair_id)  # a pair that ended in its first turn
        tally = self._tally
        self.pairs.pop(relayer.pair_id, None)
        if not self.pairs and self._drained is not None:
            self._drained.set()
        if relayer.path is PairPath.P2P and relayer.other_addr is not None:
            tally.p2p_total += 1
            tally.emit(ev.P2PReported, pair_id=relayer.pair_id, addr=relayer.other_addr)
        tally.bytes_relayed_closed += relayer.bytes_d2a + relayer.bytes_a2d
        stats = self._pair_stats(relayer)
        tally.emit(
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
