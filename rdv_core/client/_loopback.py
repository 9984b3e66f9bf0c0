"""One loopback family is enough: the peer's ``::1`` candidate waits for its ``127.0.0.1`` one.

A peer on this host lists both loopback addresses on its port P, and both reach the
same dual-stack listener. Dialling both (each peer, both ways) made two direct conns per
attempt where one is used: two more dials, accepts and header exchanges, and a loser to
close on each side: about a third of a loopback attempt's CPU (bench/connect.py). So,
as in Happy Eyeballs (RFC 8305) but only where the two families are the same host
for sure, the IPv6 loopback dial starts only when the IPv4 one is in trouble (refused,
failed) or has not connected within :data:`LOOPBACK_STAGGER`; once the IPv4 dial
connected, or found the peer's SYN already on its 4-tuple (``EADDRNOTAVAIL``: the
conn arrives as inbound), the IPv6 candidate is skipped with an event. A loopback SYN
is answered inside the ``connect()`` call, so the wait costs nothing when IPv4 works.
Every other space is dialled at once, as before: across NATs the SYNs must cross.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from rdv_core.events import (
    Candidate,
    CandidateConnected,
    CandidateFailed,
    CandidateSkipped,
    Clock,
    DialRetried,
    Event,
)
from rdv_core.wire import Addr, AddrSpace

#: How long the IPv6 loopback dial waits for news of the IPv4 one (docs/PROTOCOL.md
#: section 11). The IPv4 loopback connect completes or fails within its ``connect()``
#: call; only a scheduler stall on a loaded machine comes near this.
LOOPBACK_STAGGER: Final = 0.05

#: The skip's reason (a ``CandidateSkipped`` event).
SKIP_REASON: Final = "the IPv4 loopback candidate reached the peer: the same host and listener"


class LoopbackGate:
    """Tells the IPv6 loopback dials whether the IPv4 ones reached the peer."""

    __slots__ = ("_decided", "reached")

    def __init__(self) -> None:
        self._decided = asyncio.Event()
        #: True once an IPv4 loopback dial connected (or met the peer's SYN).
        self.reached = False

    def watch(self, emit: Callable[[Event], None]) -> Callable[[Event], None]:
        """``emit`` for an IPv4 loopback dial, taking note of how it goes."""

        def observe(event: Event) -> None:
            if not self._decided.is_set():
                if isinstance(event, CandidateConnected | CandidateSkipped):
                    self.reached = True
                    self._decided.set()
                elif isinstance(event, DialRetried | CandidateFailed):
                    self._decided.set()
            emit(event)

        return observe

    async def enter(
        self, candidate: Candidate, addr: Addr, emit: Callable[[Event], None], clock: Clock
    ) -> Callable[[Event], None] | None:
        """The ``emit`` a dial of ``addr`` should use, or None: not needed (skip emitted).

        IPv4 loopback dials are watched; IPv6 loopback ones wait here first.
        """
        if addr.space == AddrSpace.LOOPBACK4:
            return self.watch(emit)
        if addr.space != AddrSpace.LOOPBACK6:
            return emit
        try:
            needed = await self.needed()
        except asyncio.CancelledError:
            emit(CandidateSkipped(clock(), candidate, "the race ended first"))
            raise
        if needed:
            return emit
        emit(CandidateSkipped(clock(), candidate, SKIP_REASON))
        return None

    async def needed(self) -> bool:
        """Wait for the IPv4 news (at most :data:`LOOPBACK_STAGGER`): dial IPv6 too?"""
        try:
            async with asyncio.timeout(LOOPBACK_STAGGER):
                await self._decided.wait()
        except TimeoutError:
            return True
        return not self.reached
