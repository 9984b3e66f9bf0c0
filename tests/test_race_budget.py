"""The SYN budget (rdv_core/client/_budget.py): hard caps per address and per attempt.

Unit tests of the accounting, then real dials on loopback: a race whose candidates all
refuse, or never answer, books no more than the budget allows, and says so in its events.
"""

from __future__ import annotations

import itertools
import socket
import sys
from collections.abc import Iterator

import pytest

from rdv_core.client._budget import (
    KERNEL_SYN_RETRIES,
    KERNEL_SYN_RTO,
    AddressHistory,
    BudgetPolicy,
    SessionBudget,
    SynBudget,
    kernel_retransmissions,
)
from rdv_core.client._client import open_listeners
from rdv_core.client._pickers import WaitForP2P
from rdv_core.client._race import Race
from rdv_core.client._sockets import local_port
from rdv_core.errors import NoConnectionError
from rdv_core.events import CandidateFailed, Clock, DialRetried, Event
from rdv_core.wire import DIAL, Addr, AddrSpace

A = Addr.parse("203.0.113.12:4000")
B = Addr.parse("203.0.113.13:4000")


def test_policy_validation_and_worst_case() -> None:
    policy = BudgetPolicy()
    assert policy.worst_case(10) == policy.per_attempt
    assert policy.worst_case(1) == policy.per_addr
    with pytest.raises(ValueError):
        BudgetPolicy(per_addr=200, per_attempt=100)
    with pytest.raises(ValueError):
        BudgetPolicy(burst=100)
    with pytest.raises(ValueError):
        BudgetPolicy(min_allowance=0)


def test_each_dial_books_its_kernel_retransmission_until_settled() -> None:
    budget = SynBudget(BudgetPolicy(per_addr=10, per_attempt=10, burst=4))
    cand = budget.for_addr(A)
    assert budget.for_addr(A) is cand
    assert cand.reserve()
    assert cand.booked == 1 + KERNEL_SYN_RETRIES
    cand.settle(0.01)  # refused after 10 ms: the kernel never retransmitted
    cand.settle(0.01)  # settling twice changes nothing
    assert cand.booked == budget.booked == 1
    assert cand.reserve()
    cand.settle(1.5)  # 1.5 s in SYN_SENT: the kernel's retransmission went out
    assert cand.booked == 3
    assert kernel_retransmissions(0.5) == 0
    assert kernel_retransmissions(1.0) == 1
    assert kernel_retransmissions(100.0) == KERNEL_SYN_RETRIES


def test_a_dial_unanswered_for_long_looks_lost_until_it_settles() -> None:
    now = [100.0]
    budget = SynBudget(clock=lambda: now[0])
    public, private = budget.for_addr(A), budget.for_addr(Addr.parse("10.9.9.9:4000"))
    assert public.reserve() and private.reserve()
    assert budget.lost_syn_retry(0.2) is None  # sent just now: an answer may still come
    now[0] += 0.3
    # The kernel retransmits that SYN 1 s after it; a silent private address is not lost.
    assert budget.lost_syn_retry(0.2) == 100.0 + KERNEL_SYN_RTO
    now[0] += 0.1
    assert budget.for_addr(B).reserve()  # younger: not lost yet, the older one counts
    assert budget.lost_syn_retry(0.2) == 100.0 + KERNEL_SYN_RTO
    public.settle(0.4)  # refused, or connected
    assert budget.lost_syn_retry(0.2) is None
    now[0] += 0.3
    assert budget.lost_syn_retry(0.2) == pytest.approx(100.4 + KERNEL_SYN_RTO)


def test_per_addr_and_per_attempt_caps_are_hard() -> None:
    budget = SynBudget(BudgetPolicy(per_addr=6, per_attempt=8, burst=2, min_allowance=2))
    a, b = budget.for_addr(A), budget.for_addr(B)
    dials = 0
    while a.reserve():
        a.settle(0.0)
        dials += 1
    assert dials == 5 and a.booked == 5  # one more would need 2 (SYN + retransmission)
    assert a.spent
    # B has its own allowance, but only 3 SYNs are left in the attempt.
    b_dials = 0
    while b.reserve():
        b.settle(0.0)
        b_dials += 1
    assert b_dials == 2 and budget.booked == 7 and budget.left == 1
    assert a.burst_left() == 0


def test_history_halves_the_allowance_of_addresses_that_never_connect() -> None:
    history = AddressHistory()
    policy = BudgetPolicy(per_addr=32, per_attempt=128, burst=16, min_allowance=4)
    allowances = []
    for _ in range(5):
        budget = SynBudget(policy, history)
        allowances.append(budget.for_addr(A).allowance)
        budget.finish(A, connected=False)
    assert allowances == [32, 16, 8, 4, 4]
    budget = SynBudget(policy, history)
    budget.for_addr(A)
    budget.finish(A, connected=True)
    assert history.failures(A) == 0
    assert SynBudget(policy, history).for_addr(A).allowance == 32
    # An address never dialled in an attempt is not judged by it.
    SynBudget(policy, history).finish(B, connected=False)
    assert history.failures(B) == 0


def _spend(budget: SynBudget, port: int) -> int:
    """Dial fresh addresses until the budget says no; the SYNs booked."""
    offset = 0
    while True:
        cand = budget.for_addr(Addr.parse(f"203.0.113.12:{port + offset}"))
        while cand.reserve():
            cand.settle(0.0)
        if cand.sent == 0:
            return budget.booked
        offset += 1


def test_a_sessions_attempts_share_one_cap_released_on_the_dialers_schedule() -> None:
    """docs/PROTOCOL.md 16.5: however many attempts the peer's SYNCs start, the session
    grants one attempt's cap per scheduled attempt, as the schedule comes due."""
    now = [100.0]
    policy = BudgetPolicy()
    session = SessionBudget(policy, AddressHistory(), (0.0, 0.0, 30.0), clock=lambda: now[0])
    # (A dial books 2 SYNs and settles at 1: each attempt's last SYN may not fit.)
    spent = [_spend(session(), 1000 + 100 * n) for n in range(4)]
    assert sum(spent) <= 2 * policy.per_attempt and spent[0] >= policy.per_attempt - 1
    assert spent[-1] == 0
    now[0] += 29.9
    assert _spend(session(), 2000) == 0
    now[0] += 0.1
    assert session.granted() == 3 * policy.per_attempt
    spent += [_spend(session(), 3000 + 100 * n) for n in range(3)]
    assert sum(spent) <= 3 * policy.per_attempt and spent[-3] > 0 and spent[-1] == 0
    # What an attempt did not send is the session's again.
    session = SessionBudget(policy, None, (0.0,))
    budget = session()
    cand = budget.for_addr(A)
    assert cand.reserve() and session.spent == 2 == budget.booked
    cand.settle(0.01)
    assert session.spent == 1 == budget.booked


def test_history_is_bounded() -> None:
    history = AddressHistory()
    for port in range(1, AddressHistory.MAX_ENTRIES + 50):
        history.record(Addr.parse(f"203.0.113.12:{port}"), connected=False)
    assert history.failures(Addr.parse("203.0.113.12:1")) == 0
    assert history.failures(Addr.parse(f"203.0.113.12:{AddressHistory.MAX_ENTRIES + 10}")) == 1


@pytest.fixture
def closed_ports() -> Iterator[list[int]]:
    """Loopback ports nobody listens on (bound then released: the kernel resets SYNs)."""
    ports = []
    for _ in range(4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    yield ports


def _race(addrs: list[Addr], budget: SynBudget, seconds: float, events: list[Event]) -> Race:
    listeners = open_listeners()
    ids = itertools.count(1)
    return Race(
        method=DIAL,
        token="tok",
        spaces=AddrSpace.LOOPBACK,
        picker=WaitForP2P(seconds),
        listeners=listeners,
        port=local_port(listeners[0]),
        peer_addrs=addrs,
        relay=None,
        clock=Clock(),
        emit=events.append,
        new_id=lambda: next(ids),
        budget=budget,
    )


async def test_a_race_against_closed_ports_stops_at_the_budget(closed_ports: list[int]) -> None:
    # Loopback candidates are paced from 100 ms on; a budget of 3 per address is spent
    # within the race's 1.5 s, and the attempt's cap of 8 holds across all four.
    addrs = [Addr.parse(f"127.0.0.1:{p}") for p in closed_ports]
    budget = SynBudget(BudgetPolicy(per_addr=3, per_attempt=8, burst=0, min_allowance=1))
    events: list[Event] = []
    with pytest.raises(NoConnectionError) as info:
        await _race(addrs, budget, 1.5, events).run()
    assert "SYN budget spent" in str(info.value)
    assert budget.booked <= 8
    failed = [e for e in events if isinstance(e, CandidateFailed) and "budget" in e.detail]
    assert failed and all(e.reason == "refused" for e in failed)
    dials = 1 + len([e for e in events if isinstance(e, DialRetried)])
    assert dials <= 8


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_SYNCNT and SYN_SENT are Linux")
async def test_the_budget_counts_kernel_retransmissions_to_silent_addresses() -> None:
    # A full accept queue drops SYNs: the dial stays unanswered. Loopback candidates are
    # not given up by the race (no NAT), so the kernel's own retransmission is booked.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = [listener]
    for _ in range(2):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        held.append(c)
    try:
        budget = SynBudget()
        events: list[Event] = []
        with pytest.raises(NoConnectionError):
            await _race([Addr.parse(f"127.0.0.1:{port}")], budget, 1.2, events).run()
        # One SYN, and the kernel's retransmission after 1 s.
        assert budget.booked == 2
    finally:
        for s in held:
            s.close()


async def test_a_candidate_the_budget_never_reached_is_not_called_refused(
    closed_ports: list[int],
) -> None:
    # The first dial books the attempt's two SYNs (its own and the kernel's resend): the
    # other candidates read "0 SYNs in 0 dials, the last refused" of a dial never made.
    addrs = [Addr.parse(f"127.0.0.1:{p}") for p in closed_ports]
    budget = SynBudget(BudgetPolicy(per_addr=2, per_attempt=2, burst=0, min_allowance=1))
    events: list[Event] = []
    with pytest.raises(NoConnectionError):
        await _race(addrs, budget, 1.0, events).run()
    details = [e.detail for e in events if isinstance(e, CandidateFailed) and "budget" in e.detail]
    assert "SYN budget spent before its first dial: not dialled" in details, details
    assert not any("in 0 dials" in d for d in details), details
