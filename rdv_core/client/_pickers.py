"""Pickers: how the dialing peer chooses the conn that carries the application data.

The race offers conns as they become usable (the relay right after the server's
``101``, each direct conn once its header lines checked out) through an
:class:`Offers` board; a picker watches the board and returns its choice. The race
then cancels everything still pending, writes ``OTHER``/``CONTINUE`` and closes the
losers (docs/PROTOCOL.md section 7). Only the dialer picks: the accepter takes the first
conn on which ``CONTINUE`` arrives.

Write your own by subclassing :class:`Picker`; ``pick`` must return one of the
offered items, or None when it gives up (the attempt then fails).
"""

from __future__ import annotations

import abc
import asyncio
import time
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class LostSyns(Protocol):
    """Who knows our dials' SYNs (the attempt's :class:`~rdv_core.client._budget.SynBudget`)."""

    def lost_syn_retry(self, unanswered_for: float) -> float | None:
        """When the kernel retransmits a SYN unanswered for that long (monotonic), or None."""


class Offers(Generic[T]):
    """The conns a picker may choose from, in arrival order, and a way to wait for more.

    ``exhausted`` is set when nothing new can ever arrive (no direct candidate can be
    dialled and inbound conns are refused, e.g. with address spaces ``none``), so that
    a picker need not wait for nothing.
    """

    __slots__ = ("_changed", "_items", "exhausted", "lost_syns", "on_the_way", "rtt_hint")

    def __init__(self) -> None:
        self._items: list[tuple[T, bool]] = []
        self._changed = asyncio.Event()
        self.exhausted = False
        #: Our round-trip time to the server (seconds), if known: how far away things are.
        self.rtt_hint: float | None = None
        #: Direct conns whose TCP is up but whose header lines are not checked yet (set
        #: by the race with :meth:`coming` and :meth:`arrived`).
        self.on_the_way = 0
        #: Our dials' SYNs, to wait for the retransmission of one that looks lost (set by
        #: the race; None: not known).
        self.lost_syns: LostSyns | None = None

    def coming(self) -> None:
        """A direct conn is up and its header lines are on the way (called by the race).

        No wake-up: a picker waits for offers, or (in its grace) for the last conn on the
        way to arrive; one more on the way changes neither (it woke the default picker for
        nothing once per attempt, bench/connect.py).
        """
        self.on_the_way += 1

    def arrived(self) -> None:
        """That conn's header lines checked out or failed (called by the race)."""
        self.on_the_way -= 1
        self._notify()

    def add(self, item: T, is_relay: bool) -> None:
        """Offer a usable conn (called by the race)."""
        self._items.append((item, is_relay))
        self._notify()

    def withdraw(self, item: T) -> None:
        """Take back an offer whose conn died before the pick (called by the race)."""
        self._items = [(i, r) for i, r in self._items if i is not item]
        self._notify()

    def set_exhausted(self) -> None:
        """Declare that no further offer can arrive (called by the race)."""
        self.exhausted = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()

    def wake(self) -> None:
        """Wake a picker waiting in :meth:`changed` with nothing new (its own timer)."""
        self._changed.set()

    @property
    def first(self) -> T | None:
        """The earliest offer still standing, relay or direct."""
        return self._items[0][0] if self._items else None

    @property
    def relay(self) -> T | None:
        """The relay conn, if it is on offer."""
        return next((i for i, r in self._items if r), None)

    @property
    def direct(self) -> list[T]:
        """The direct (p2p) conns on offer, earliest first."""
        return [i for i, r in self._items if not r]

    async def changed(self) -> None:
        """Wait until an offer is added or withdrawn, or the board is exhausted."""
        self._changed.clear()
        await self._changed.wait()


class Picker(abc.ABC):
    """Decides, as conns become available, which one the dialer uses."""

    @abc.abstractmethod
    async def pick(self, offers: Offers[T]) -> T | None:
        """Wait as the policy says and return the chosen offer (None: nothing to choose)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A short human-readable name, e.g. ``wait-for-p2p 1s`` (used in events)."""


def _seconds(value: float) -> str:
    return f"{value:g}s"


#: :class:`WaitForP2P` waits at most this many times its ``seconds`` longer while a direct
#: conn is up but its header lines are still on the way. Over lossy paths the TCP conn
#: often comes up late, from the kernel's retransmission of a SYN one second after it
#: (the race keeps such SYNs, docs/PROTOCOL.md section 11), and a lost header segment
#: costs one more retransmission: the lab's lossy cells lost runs to the relay that
#: were a header line away from direct (docs/LAB-NOTES.md section 11).
ON_THE_WAY_GRACE = 1.0

#: :class:`WaitForP2P` waits this many round trips to the server longer than its
#: ``seconds``. A direct conn needs about three round trips *to the peer* (the SYNs
#: crossing, maybe one more try after an RST, the header lines), and the path to the peer
#: is about twice ours when the peer is as far from the server as we are: 100 ms one way
#: on each side takes about 0.9 s (docs/LAB-NOTES.md section 11), past a plain 1 s wait
#: after one lost packet. On loopback and LANs this adds nothing measurable.
WAIT_RTTS = 4

#: A SYN of ours still unanswered after this many round trips to the server looks lost: an
#: answer (the peer's SYN-ACK, or a router's refusal) comes one round trip *to the peer*
#: after it, about twice ours when the peer is as far from the server as we are.
LOST_AFTER_RTTS = 4

#: After the kernel retransmitted a SYN that looked lost, :class:`WaitForP2P` waits this
#: many round trips to the server for the conn it may bring: the SYN's way to the peer and
#: the answer back, then the header lines both ways, about 2.5 round trips to the peer
#: (docs/LAB-NOTES.md section 11, "Loss, third step": with 5 % loss per crossing at 20 ms,
#: runs whose SYN or its answer was lost came up 1.1-1.2 s after the race started, just
#: past the 1 s + 4 RTT deadline).
ANSWER_RTTS = 6

#: ... and never less than this many seconds: near the server the round trips are
#: microseconds, while the conn a retransmitted SYN brings at zero delay came up 9-25 ms
#: after the retransmission (three Python processes on two cores).
ANSWER_FLOOR = 0.1


class WaitForP2P(Picker):
    """Take the first direct conn; fall back to the relay after ``seconds``.

    The relay is ready at once, while a direct conn needs about two round trips, so
    the relay is "penalized" by ``seconds``, plus :data:`WAIT_RTTS` times our round trip
    to the server where the race knows it (far paths need more time). After that, for up
    to :data:`ON_THE_WAY_GRACE` times ``seconds`` more, it waits while a direct conn is up
    but its header lines have not arrived, and while a SYN of ours that looks lost
    (:data:`LOST_AFTER_RTTS`) may still be answered through the kernel's retransmission
    (:data:`ANSWER_RTTS`, at least :data:`ANSWER_FLOOR`): the dialer keeps its SYNs to
    public addresses, near the server too (docs/LAB-NOTES.md section 11, "the give-up
    after a pre-opening SYN"). When no direct conn can ever arrive
    (address spaces ``none``) the relay is taken at once.
    """

    __slots__ = ("seconds",)

    def __init__(self, seconds: float = 1.0) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.seconds = seconds

    async def pick(self, offers: Offers[T]) -> T | None:
        """See the class docstring."""
        if offers.direct:
            return offers.direct[0]
        # A timer that wakes the board, not asyncio.timeout(): no cancel of our task to
        # deliver and undo, no current_task() (each asyncio call asks getpid()); on the
        # default dial's path once per attempt (issue 10, bench/connect.py).
        loop = asyncio.get_running_loop()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            offers.wake()

        handle = loop.call_later(self.seconds + WAIT_RTTS * (offers.rtt_hint or 0.0), expire)
        try:
            while not offers.direct and not offers.exhausted and not expired:
                await offers.changed()
        finally:
            handle.cancel()  # the relay's penalty is over, or a direct conn came
        if offers.direct:
            return offers.direct[0]
        grace_end = time.monotonic() + ON_THE_WAY_GRACE * self.seconds
        while not offers.direct:
            until = _patience(offers, grace_end)
            if until is None or until <= time.monotonic():
                break
            # Look again after it: another SYN may have been retransmitted meanwhile.
            handle = loop.call_later(until - time.monotonic(), offers.wake)
            try:
                await offers.changed()
            finally:
                handle.cancel()
        return offers.direct[0] if offers.direct else offers.relay

    def describe(self) -> str:
        """See :meth:`Picker.describe`."""
        return f"wait-for-p2p {_seconds(self.seconds)}"

    def __repr__(self) -> str:
        return f"WaitForP2P({self.seconds!r})"


def _patience(offers: Offers[T], grace_end: float) -> float | None:
    """Until when (monotonic) :class:`WaitForP2P` waits past its deadline, or None."""
    until = grace_end if offers.on_the_way else None
    rtt = offers.rtt_hint
    if offers.lost_syns is not None and rtt is not None:
        retry = offers.lost_syns.lost_syn_retry(LOST_AFTER_RTTS * rtt)
        if retry is not None:
            answer_by = min(grace_end, retry + max(ANSWER_RTTS * rtt, ANSWER_FLOOR))
            until = answer_by if until is None else max(until, answer_by)
    return until


class PickFirst(Picker):
    """Take the first conn available, relay included (which usually means the relay)."""

    __slots__ = ()

    async def pick(self, offers: Offers[T]) -> T | None:
        """See the class docstring."""
        while offers.first is None and not offers.exhausted:
            await offers.changed()
        return offers.first

    def describe(self) -> str:
        """See :meth:`Picker.describe`."""
        return "pick-first"

    def __repr__(self) -> str:
        return "PickFirst()"


class WaitConstant(Picker):
    """Always wait the full ``seconds``, then prefer the first direct conn over the relay.

    Useful for debugging and statistics: every candidate gets the same time.
    """

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.seconds = seconds

    async def pick(self, offers: Offers[T]) -> T | None:
        """See the class docstring."""
        await asyncio.sleep(self.seconds)
        return offers.direct[0] if offers.direct else offers.relay

    def describe(self) -> str:
        """See :meth:`Picker.describe`."""
        return f"wait-constant {_seconds(self.seconds)}"

    def __repr__(self) -> str:
        return f"WaitConstant({self.seconds!r})"
