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

#: How long the IPv6 loopback dial waits for news of the IPv4 one (docs/PROTOCOL.md
#: section 11). The IPv4 loopback connect completes or fails within its ``connect()``
#: call; only a scheduler stall on a loaded machine comes near this.
LOOPBACK_STAGGER: Final = 0.05

#: The skip's reason (a ``CandidateSkipped`` event).
SKIP_REASON: Final = "the IPv4 loopback candidate reached the peer: the same host and listener"


class LoopbackGate:
    """Holds the IPv6 loopback dials until the IPv4 ones have news: no task while held.

    The race dials IPv4 loopback candidates with :meth:`watch`'s ``emit`` and hands each
    IPv6 loopback candidate to :meth:`hold` with a function that starts its dial. A held
    candidate costs a list entry and (for all of them) one timer; when the IPv4 dial
    connects, the skip is emitted in that same callback.
    """

    __slots__ = ("_clock", "_emit", "_held", "_timer", "decided", "reached")

    def __init__(self, emit: Callable[[Event], None], clock: Clock) -> None:
        self._emit, self._clock = emit, clock
        self._held: list[tuple[Candidate, Callable[[], None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        #: True once an IPv4 loopback dial had news (connected, refused, failed, ...).
        self.decided = False
        #: True once an IPv4 loopback dial connected (or met the peer's SYN).
        self.reached = False

    def watch(self, emit: Callable[[Event], None]) -> Callable[[Event], None]:
        """``emit`` for an IPv4 loopback dial, taking note of how it goes."""

        def observe(event: Event) -> None:
            emit(event)
            if not self.decided:
                if isinstance(event, CandidateConnected | CandidateSkipped):
                    self._decide(reached=True)
                elif isinstance(event, DialRetried | CandidateFailed):
                    self._decide(reached=False)

        return observe

    def hold(self, candidate: Candidate, start: Callable[[], None]) -> None:
        """Dial ``candidate`` (``start()``) once needed; skip it if IPv4 reached the peer."""
        if self.decided:
            self._release(candidate, start)
            return
        self._held.append((candidate, start))
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(LOOPBACK_STAGGER, self._decide, False)

    def close(self) -> None:
        """The race ended (or stopped dialling): held candidates are skipped."""
        self._cancel_timer()
        held, self._held = self._held, []
        for candidate, _ in held:
            self._emit(CandidateSkipped(self._clock(), candidate, "the race ended first"))

    def _decide(self, reached: bool) -> None:
        """The IPv4 news (or, ``reached`` False from the timer, none within the stagger)."""
        self.decided, self.reached = True, reached
        self._cancel_timer()
        held, self._held = self._held, []
        for candidate, start in held:
            self._release(candidate, start)

    def _release(self, candidate: Candidate, start: Callable[[], None]) -> None:
        if self.reached:
            self._emit(CandidateSkipped(self._clock(), candidate, SKIP_REASON))
        else:
            start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
