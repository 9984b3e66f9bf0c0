"""The SYN budget: a hard cap on the unsolicited traffic one attempt may send.

Every address we dial comes from someone else: the peer lists its candidates
(``Rdv-Self-Addrs``) and the server hands them on (``Rdv-Peer-Addrs``), and either may
lie. So no address list, and no answer (or silence) from an address, may make us send
more than a small stated number of SYNs to anyone (docs/PROTOCOL.md section 11, "SYN
budget"). Everything that sends a SYN on behalf of the race draws it from here first:
the dialer (:mod:`rdv_core.client._dialer`), and later users that dial extra candidates
(port prediction, background retries over a long session).

API, in one breath::

    history = AddressHistory()                # one per Client: outlives attempts
    budget = SynBudget(BudgetPolicy(), history)   # one per attempt
    cand = budget.for_addr(addr)              # one per candidate (idempotent per addr)
    if cand.reserve():                        # before each connect(): False = spent
        ...connect()...
        cand.settle(elapsed_s)                # after it ended: refunds unsent retransmits
    cand.burst_left()                         # back-to-back dials still allowed
    budget.finish(addr, connected=...)        # at the end of the attempt, for the history
    session = SessionBudget(policy, history, releases)  # fast start: all its attempts
    budget = session()                        # an attempt's budget, within the session's

Accounting is conservative and hard: :meth:`CandidateBudget.reserve` books the SYN *and*
the kernel's own retransmissions of it (capped per socket with ``TCP_SYNCNT``, see
:data:`KERNEL_SYN_RETRIES`), and :meth:`CandidateBudget.settle` gives back those that
cannot have been sent any more, from the time the dial took. So the counts are upper
bounds of what went on the wire, never estimates below it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from rdv_core.wire import Addr, AddrSpace

#: How many times the kernel may retransmit one SYN (``TCP_SYNCNT``, Linux) before the
#: connect fails with ETIMEDOUT: once, after its initial one-second timeout, then give up
#: two seconds later (3 s in all). The race gives up unanswered SYNs itself sooner where
#: it can (:func:`~rdv_core.client._dialer.stall_timeout`); without the cap Linux would
#: retransmit six times over two minutes, which the budget would have to book up front.
KERNEL_SYN_RETRIES: Final = 1

#: The kernel's first SYN retransmission comes this long after the SYN (Linux
#: ``TCP_TIMEOUT_INIT``): a dial that ended sooner sent exactly one SYN.
KERNEL_SYN_RTO: Final = 1.0


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """The numbers of the budget. The defaults are what rdv ships (README "NAT lab").

    Attributes:
        per_addr: SYNs one attempt may send to one address, all dials and kernel
            retransmissions included.
        per_attempt: SYNs one attempt may send to all addresses together (at most 10
            candidates, docs/PROTOCOL.md section 9).
        burst: Of ``per_addr``, how many may go back to back, each as soon as the previous
            one was refused (one SYN in flight at a time). At zero delay between two
            routers that answer early SYNs with RST, two such bursts must overlap for the
            SYNs to cross (docs/LAB-NOTES.md section 7); elsewhere a refusal takes a
            round trip, so the burst is paced by the path itself.
        min_allowance: The fewest SYNs an address gets per attempt however often it
            failed before (:class:`AddressHistory` halves the allowance per failed
            attempt, down to this).
    """

    per_addr: int = 32
    per_attempt: int = 128
    burst: int = 16
    min_allowance: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.min_allowance <= self.per_addr <= self.per_attempt:
            raise ValueError("need 1 <= min_allowance <= per_addr <= per_attempt")
        if not 0 <= self.burst <= self.per_addr:
            raise ValueError("need 0 <= burst <= per_addr")

    def worst_case(self, candidates: int = 10) -> int:
        """The most SYNs one attempt can send with ``candidates`` addresses to dial."""
        return min(self.per_attempt, candidates * self.per_addr)


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last: float = 0.0


class AddressHistory:
    """What earlier attempts learnt about addresses: backoff for those that never connect.

    An address that was dialled in an attempt and never connected (it refused every SYN,
    or never answered) gets half the allowance in the next attempt, down to
    :attr:`BudgetPolicy.min_allowance`; one that connects is forgiven. One history per
    :class:`~rdv_core.client.Client` (so repeated attempts of one client back off), at most
    :data:`MAX_ENTRIES` addresses (the oldest forgotten first).
    """

    MAX_ENTRIES: Final = 1024

    __slots__ = ("_clock", "_records")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: dict[Addr, _Record] = {}
        self._clock = clock

    def failures(self, addr: Addr) -> int:
        """How many attempts in a row dialled ``addr`` without a conn."""
        record = self._records.get(addr)
        return record.failures if record else 0

    def allowance(self, addr: Addr, policy: BudgetPolicy) -> int:
        """SYNs ``addr`` may get in the next attempt."""
        shift = min(self.failures(addr), 16)
        return max(policy.min_allowance, policy.per_addr >> shift)

    def record(self, addr: Addr, *, connected: bool) -> None:
        """The outcome of one attempt's dials of ``addr``."""
        if connected:
            self._records.pop(addr, None)
            return
        record = self._records.pop(addr, None) or _Record()
        record.failures += 1
        record.last = self._clock()
        self._records[addr] = record  # re-inserted: most recent last
        while len(self._records) > self.MAX_ENTRIES:
            del self._records[next(iter(self._records))]


class CandidateBudget:
    """One address's share of an attempt's budget (see the module docstring)."""

    __slots__ = ("_attempt", "_open", "addr", "allowance", "booked", "burst", "opened_at", "sent")

    def __init__(self, attempt: SynBudget, addr: Addr, allowance: int, burst: int) -> None:
        self._attempt = attempt
        self.addr = addr
        #: SYNs this address may get in this attempt.
        self.allowance = allowance
        #: Of which back to back.
        self.burst = min(burst, allowance)
        #: SYNs booked so far (sent, or reserved for the kernel's retransmission).
        self.booked = 0
        #: connect() calls so far.
        self.sent = 0
        # A reservation not settled yet.
        self._open = False
        #: When the dial booked last was reserved (``time.monotonic()``), while unsettled.
        self.opened_at: float | None = None

    @property
    def spent(self) -> bool:
        """True when no further dial fits (neither here nor in the attempt)."""
        return self._cost() > min(self.allowance - self.booked, self._attempt.left)

    def _cost(self) -> int:
        return 1 + KERNEL_SYN_RETRIES

    def reserve(self) -> bool:
        """Book one dial (its SYN and the kernel's retransmissions); False when spent."""
        cost = self._cost()
        if cost > self.allowance - self.booked or not self._attempt.take(cost):
            return False
        self.booked += cost
        self.sent += 1
        self._open = True
        self.opened_at = self._attempt.clock()
        return True

    def settle(self, elapsed: float) -> None:
        """The dial booked last ended after ``elapsed`` seconds: give back unsent SYNs.

        Only the first call after a :meth:`reserve` counts (settling twice is harmless).
        """
        if not self._open:
            return
        self._open = False
        self.opened_at = None
        unsent = KERNEL_SYN_RETRIES - kernel_retransmissions(elapsed)
        if unsent > 0:
            self.booked -= unsent
            self._attempt.give_back(unsent)

    def burst_left(self) -> int:
        """How many more dials may go back to back (without a pause) right now."""
        return max(0, self.burst - self.sent)


def kernel_retransmissions(elapsed: float) -> int:
    """How many times the kernel can have retransmitted a SYN within ``elapsed`` seconds."""
    count = 0
    due = KERNEL_SYN_RTO
    while count < KERNEL_SYN_RETRIES and elapsed >= due:
        count += 1
        due = 2 * due + KERNEL_SYN_RTO  # timeouts double: retransmissions at 1 s, 3 s, 7 s
    return count


class SynBudget:
    """The budget of one attempt: every candidate's share and the cap across all of them.

    Args:
        policy: The numbers (default: :class:`BudgetPolicy`).
        history: What earlier attempts of the same client learnt (None: nothing).
    """

    __slots__ = ("_candidates", "_left", "clock", "history", "policy", "session")

    def __init__(
        self,
        policy: BudgetPolicy | None = None,
        history: AddressHistory | None = None,
        clock: Callable[[], float] = time.monotonic,
        session: SessionBudget | None = None,
    ) -> None:
        self.policy = policy or BudgetPolicy()
        self.history = history
        #: The clock of :attr:`CandidateBudget.opened_at`.
        self.clock = clock
        #: The long conn this attempt is one of (fast start), whose cap applies too.
        self.session = session
        self._left = self.policy.per_attempt
        self._candidates: dict[Addr, CandidateBudget] = {}

    @property
    def left(self) -> int:
        """SYNs the attempt may still book, across all addresses (and the session's)."""
        if self.session is None:
            return self._left
        return min(self._left, self.session.left)

    def for_addr(self, addr: Addr) -> CandidateBudget:
        """The share of ``addr`` (made on first use; the same object afterwards)."""
        cand = self._candidates.get(addr)
        if cand is None:
            allowance = self.policy.per_addr
            if self.history is not None:
                allowance = self.history.allowance(addr, self.policy)
            cand = CandidateBudget(self, addr, allowance, self.policy.burst)
            self._candidates[addr] = cand
        return cand

    def take(self, count: int) -> bool:
        """Book ``count`` SYNs against the attempt's cap (all or nothing)."""
        if count > self.left:
            return False
        self._left -= count
        if self.session is not None:
            self.session.spent += count
        return True

    def give_back(self, count: int) -> None:
        """Return SYNs booked but not sent."""
        count = min(count, self.policy.per_attempt - self._left)
        self._left += count
        if self.session is not None:
            self.session.spent -= count

    @property
    def booked(self) -> int:
        """SYNs booked so far across all addresses (an upper bound of what was sent)."""
        return self.policy.per_attempt - self._left

    def finish(self, addr: Addr, *, connected: bool) -> None:
        """Tell the history how dialling ``addr`` ended in this attempt."""
        if self.history is not None and addr in self._candidates:
            self.history.record(addr, connected=connected)

    def with_policy(self, **changes: int) -> SynBudget:
        """A fresh budget with some numbers changed (tests, experiments)."""
        policy = dataclasses.replace(self.policy, **changes)
        return SynBudget(policy, self.history, self.clock, self.session)

    def lost_syn_retry(self, unanswered_for: float) -> float | None:
        """When the kernel retransmits (or retransmitted) a SYN that looks lost, if any.

        A dial still unsettled longer than ``unanswered_for`` after its SYN (a time in
        which an answer should have come) waits for the kernel's retransmission of that
        very SYN, :data:`KERNEL_SYN_RTO` after it: the only SYN that can finish a
        handshake the routers may already hold (docs/PROTOCOL.md section 11). Returns the
        latest such retransmission time (on :attr:`clock`), so a picker can wait for its
        answer; None when no dial looks lost. Public addresses only: a SYN to another
        LAN's private address that is silent here is not lost, it has nowhere to go.
        """
        now = self.clock()
        due = [
            cand.opened_at + KERNEL_SYN_RTO
            for cand in self._candidates.values()
            if cand.opened_at is not None
            and now - cand.opened_at >= unanswered_for
            and cand.addr.space in (AddrSpace.PUBLIC4, AddrSpace.PUBLIC6)
        ]
        return max(due) if due else None


class SessionBudget:
    """The cap across every attempt of one long conn: fast start's background race.

    docs/PROTOCOL.md 16.5. The dialer decides when an attempt runs, and the accepter races
    whenever its ``SYNC`` arrives; each attempt has its own :class:`SynBudget`, and a quick
    retry's fresh port makes every candidate a new address for the history. So a hostile
    dialer (or server) that wrote ``SYNC`` again and again made the accepter race again and
    again, 128 SYNs at a time, for as long as the session lasted (measured in the NAT lab
    with a SYNC every 10 ms: 1,135 SYNs to one victim in 1.2 s, 5,212 in 20 s,
    tests/natlab/test_budget_faststart.py). The session grants one attempt's cap
    (:attr:`BudgetPolicy.per_attempt`) per entry of ``releases``, each that many seconds
    after the session started (the dialer's own schedule), and every attempt draws from
    both: whatever the peer writes, at most ``len(releases) x per_attempt`` SYNs in all, and
    by time ``t`` no more than the entries due by then allow.

    Call it for each attempt's budget (it is the ``budget`` factory of the upgrade).
    """

    __slots__ = ("_releases", "_start", "clock", "history", "policy", "spent")

    def __init__(
        self,
        policy: BudgetPolicy | None,
        history: AddressHistory | None,
        releases: Sequence[float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or BudgetPolicy()
        self.history = history
        self.clock = clock
        self._releases = tuple(sorted(releases))
        self._start = clock()
        #: SYNs booked by the session's attempts (given back as they settle).
        self.spent = 0

    def granted(self) -> int:
        """SYNs the session may have sent by now."""
        since = self.clock() - self._start
        return self.policy.per_attempt * sum(1 for at in self._releases if since >= at)

    @property
    def left(self) -> int:
        """SYNs the session's attempts may still book now."""
        return max(0, self.granted() - self.spent)

    def __call__(self) -> SynBudget:
        """A fresh attempt's budget, within the session's."""
        return SynBudget(self.policy, self.history, self.clock, self)


def limit_kernel_retries(sock: socket.socket) -> None:
    """Cap the kernel's SYN retransmissions of a dial socket (``TCP_SYNCNT``, Linux).

    Where the option does not exist the kernel's own count applies, which the README's
    worst case states for Linux only.
    """
    option = getattr(socket, "TCP_SYNCNT", None)
    if option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, KERNEL_SYN_RETRIES)
