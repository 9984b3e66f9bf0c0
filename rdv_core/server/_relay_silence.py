"""A relayed peer that goes silent ends its pair in bounded time (docs/PROTOCOL.md 16.12).

A peer's path to the server can be blackholed rather than reset (its NAT mapping expires,
its Wi-Fi drops, a firewall starts dropping: no RST, no FIN). The peer itself notices
(its own watch, 16.11), but its partner, whose path is fine, does not: the server goes on
taking the partner's bytes and retransmitting them to the dead peer for TCP's own
give-up (``tcp_retries2``, about 15 minutes), and the partner's ``rdv send`` waits that
long (measured by h-silence: still waiting after 30 s; both idle, the keepalive of
:mod:`._keepalive` ends the pair in about 2 minutes).

So each relayed conn is watched once every :func:`tick` seconds with the kernel's view
(:func:`~rdv_core.tcpinfo.tcp_unanswered`: bytes or probes in flight and no ACK since),
and a conn silent for :data:`RELAY_SILENCE` ends the pair with a reset (the end is the
server's, not a peer's: the live partner must not take it for an end of stream).
Nothing on the wire: rdv/1 peers (the Go one) see what a server restart shows them.

Not ``TCP_USER_TIMEOUT``: on Linux it also ends a conn whose peer answers every
zero-window probe but does not read (a receiver piped into a pager), which the watch
keeps (such a conn is answered: 0.0 however long it waits).
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Final

from rdv_core.server._relay import Relayer
from rdv_core.server._stats import PairPath
from rdv_core.tcpinfo import cap_backoff, tcp_unanswered

__all__ = ["RELAY_SILENCE", "RELAY_SILENCE_ENV", "SilenceSweep", "relay_silence"]

#: A relayed conn silent this long ends its pair. Twice the clients' own 15 s (16.10), so
#: that a peer whose path died names its own silence first; 30 times shorter than TCP's.
RELAY_SILENCE: Final = 30.0
#: The environment variable of ``rdv serve`` that sets another :data:`RELAY_SILENCE`
#: (seconds, > 0): a server whose clients must ride out longer outages, or a test.
RELAY_SILENCE_ENV: Final = "RDV_RELAY_SILENCE"
#: The longest time between two reads of the relayed conns: two ``getsockopt`` calls per
#: pair per tick, about 4,000 a second for 10,000 pairs.
MAX_TICK: Final = 5.0


def relay_silence(strict: bool = False) -> float:
    """:data:`RELAY_SILENCE`, or what :data:`RELAY_SILENCE_ENV` says if it is above 0.

    Raises:
        ValueError: with ``strict``, for a value that is set and is not a number of seconds
            above 0 (``rdv serve`` refuses it at start: ``2m`` was taken as the default).
    """
    raw = os.environ.get(RELAY_SILENCE_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value > 0:
        return value
    if strict and raw.strip():
        raise ValueError(
            f"{RELAY_SILENCE_ENV}={raw!r} is not a number of seconds above 0 "
            f"(unset it for the default, {RELAY_SILENCE:g})"
        )
    return RELAY_SILENCE


def tick(limit: float) -> float:
    """How often a pair is read: a sixth of the limit, at most :data:`MAX_TICK`."""
    return min(MAX_TICK, limit / 6)


class SilenceSweep:
    """Reads the relayed conns of ``pairs`` (the server's open pairs, by id) once a
    :func:`tick`, while any pair is open; the first conn of a pair silent for
    :func:`relay_silence` ends that pair with a reset, its reason e.g. ``dialer went
    silent for 30 s`` (the server's log and ``RelayEnded``).

    One timer for the server, not one per pair: it holds no pair, so an ended pair's
    memory goes at once (``tests/test_server_hygiene.py``). The sockets are asked for at
    each read: the splice relay takes a pair's conns over onto duplicated descriptors
    (:func:`._splice.take_over`). A pair is first read at the next sweep, never in the turn
    its relay starts, so that nothing is added before its first relayed bytes (fast
    start's first byte, docs/PROTOCOL.md 16.9). Where the kernel cannot tell (not Linux)
    TCP's own timeouts stay.
    """

    __slots__ = ("_capped", "_handle", "_limit", "_pairs")

    def __init__(self, pairs: dict[int, Relayer]) -> None:
        self._pairs = pairs
        self._limit = relay_silence()
        self._capped: set[int] = set()
        self._handle: asyncio.TimerHandle | None = None

    def relay_started(self) -> None:
        """A pair began relaying: make sure the sweep runs."""
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(tick(self._limit), self._sweep)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _sweep(self) -> None:
        self._handle = None
        relayed = [r for r in self._pairs.values() if r.path is PairPath.RELAYED]
        self._capped &= {r.pair_id for r in relayed}
        for relayer in relayed:
            if not relayer.ended:
                self._read(relayer)
        if any(r.path is PairPath.RELAYED for r in self._pairs.values()):
            self.relay_started()

    def _read(self, relayer: Relayer) -> None:
        limit, fresh = self._limit, relayer.pair_id not in self._capped
        for who, peer in (("dialer", relayer.dialer), ("accepter", relayer.accepter)):
            sock = peer.transport.get_extra_info("socket")
            waited = tcp_unanswered(sock)
            if waited is None:
                return  # not Linux, or a socket that cannot say: TCP's own timeouts
            if fresh:
                # Probes of a closed window back off to 2 minutes: two must fit in it.
                cap_backoff(sock, limit / 3)
            if waited >= limit:
                relayer.close(f"{who} went silent for {limit:.0f} s", reset=True)
                return
        self._capped.add(relayer.pair_id)
