"""Which of the race's dials start now, and how (docs/PROTOCOL.md section 11).

The race's plan (client/_candidates.py ``plan_dials``) gives each peer candidate its
route or why it is skipped. This module turns the plan into events and dials: a skip
is an event; ``::1`` waits behind ``127.0.0.1`` when the peer listed both (the loopback
gate, client/_loopback.py); every other candidate is dialled at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rdv_core.client._candidates import DialRoute
from rdv_core.client._loopback import LoopbackGate
from rdv_core.events import Candidate, CandidateSkipped, Clock, Event
from rdv_core.wire import AddrSpace

#: Starts one dial: the candidate, its route, and the emit its events go through
#: (None: the race's own).
SpawnDial = Callable[[Candidate, DialRoute, Callable[[Event], None] | None], None]

_LOOPBACKS = {AddrSpace.LOOPBACK4, AddrSpace.LOOPBACK6}


def start_dials(
    plan: Iterable[tuple[Candidate, DialRoute | None, str]],
    spawn: SpawnDial,
    emit: Callable[[Event], None],
    clock: Clock,
) -> tuple[int, LoopbackGate | None]:
    """Emit the plan's skips and start its dials; how many are dialable, and the gate if any."""
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
        elif gate is not None and space == AddrSpace.LOOPBACK4:
            spawn(candidate, route, gate.watch(emit))
        else:
            spawn(candidate, route, None)
    return dialable, gate


def _held(spawn: SpawnDial, candidate: Candidate, route: DialRoute) -> Callable[[], None]:
    """The gate's start of the held ``::1`` dial."""

    def start() -> None:
        spawn(candidate, route, None)

    return start
