"""Which of the race's dials start now, and how (docs/PROTOCOL.md section 11).

The race's plan (client/_candidates.py ``plan_dials``) gives each peer candidate its
route or why it is skipped. This module turns the plan into events and dials: a skip
is an event; ``::1`` waits behind ``127.0.0.1`` when the peer listed both (the loopback
gate, client/_loopback.py); a candidate whose conn to us was accepted already is skipped
(:data:`ACCEPTED_REASON`); every other candidate is dialled at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Final

from rdv_core.client._candidates import DialRoute
from rdv_core.client._link import addr_of
from rdv_core.client._loopback import LoopbackGate
from rdv_core.events import Candidate, CandidateSkipped, Clock, Event
from rdv_core.wire import Addr, AddrSpace

#: Starts one dial: the candidate, its route, and the emit its events go through
#: (None: the race's own).
SpawnDial = Callable[[Candidate, DialRoute, Callable[[Event], None] | None], None]

_LOOPBACKS = {AddrSpace.LOOPBACK4, AddrSpace.LOOPBACK6}

#: The skip's reason (a ``CandidateSkipped`` event) for a candidate that already
#: connected to us: our dial would leave from P to the same address, the 4-tuple of that
#: accepted conn, and the kernel would refuse it (docs/PROTOCOL.md section 11).
ACCEPTED_REASON: Final = (
    "the peer's conn from this address was accepted already: a dial on its 4-tuple "
    "would fail (EADDRNOTAVAIL)"
)

Plan = Sequence[tuple[Candidate, DialRoute | None, str]]


def peer_may_be_queued(plan: Plan) -> bool:
    """True when the peer may be on this host and connected to us before our race began.

    The server writes the dialer's ``101`` first (docs/PROTOCOL.md section 4); a dialer
    on this host dials our loopback candidate, and a loopback ``connect()`` is done
    inside the call: its conn may sit in our listener's queue already. The accepter then
    takes the queue before it dials (client/_race.py), so it need not dial that 4-tuple.
    """
    return any(
        route is not None and route.uplink is None and route.target.space in _LOOPBACKS
        for _, route, _ in plan
    )


def start_dials(
    plan: Iterable[tuple[Candidate, DialRoute | None, str]],
    spawn: SpawnDial,
    emit: Callable[[Event], None],
    clock: Clock,
    accepted: Collection[Addr] = (),
) -> tuple[int, LoopbackGate | None]:
    """Emit the plan's skips and start its dials; how many are dialable, and the gate if any.

    ``accepted``: the remote addresses of the conns accepted so far (as ``getpeername()``
    names them); a candidate among them is skipped, not dialled (:data:`ACCEPTED_REASON`).
    """
    planned = list(plan)
    spaces = {route.target.space for _, route, _ in planned if route is not None}
    # ::1 waits for 127.0.0.1 (client/_loopback.py, docs/PROTOCOL.md section 11).
    gate = LoopbackGate(emit, clock) if spaces >= _LOOPBACKS else None
    # The skips first: a dial may run its first step (and emit its events) inside
    # ``spawn`` (client/_eager.py), and a dial's events always came after every skip.
    dialable = 0
    for candidate, route, skipped in planned:
        if route is None:
            emit(CandidateSkipped(clock(), candidate, skipped))
        else:
            dialable += 1
    for candidate, route, _ in planned:
        if route is None:
            continue
        space = route.target.space
        if gate is not None and space == AddrSpace.LOOPBACK6:
            gate.hold(candidate, _held(spawn, candidate, route))
            continue
        observe = gate.watch(emit) if gate is not None and space == AddrSpace.LOOPBACK4 else None
        if accepted and route.uplink is None and addr_of(route.target.sockaddr()) in accepted:
            # What the dial's EADDRNOTAVAIL would have said, without its socket, bind and
            # connect; the gate hears it as IPv4 loopback news and skips ::1 too.
            (observe or emit)(CandidateSkipped(clock(), candidate, ACCEPTED_REASON))
        else:
            spawn(candidate, route, observe)
    return dialable, gate


def _held(spawn: SpawnDial, candidate: Candidate, route: DialRoute) -> Callable[[], None]:
    """The gate's start of the held ``::1`` dial."""

    def start() -> None:
        spawn(candidate, route, None)

    return start
