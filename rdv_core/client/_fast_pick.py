"""Fast start's pick: the relay, at once, without a race (docs/PROTOCOL.md section 16.2).

With fast start negotiated the dialer takes the relay whatever else exists, so a race
(a task group, a relay watcher, a picker, their cancellation: two event-loop turns and
about half a millisecond on the first byte's path, measured in the lab) has nothing to
decide. The dialer writes ``CONTINUE`` and its ``HELLO`` in one write, before it writes
any event; the accepter reads the server's command as the race's relay role does
(:func:`accepter_relay_command`). The events are the race's: ``FastStartNegotiated``
(not confirmed yet), then ``Picked`` for the relay.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rdv_core.client._budget import SessionBudget
from rdv_core.client._link import Link
from rdv_core.client._prepare import open_listeners
from rdv_core.client._relay_role import RELAY_CLOSED, accepter_relay_command
from rdv_core.client._silence import watch_relay
from rdv_core.client._upgrade import LATER_ATTEMPTS, QUICK_ATTEMPTS, Upgrader
from rdv_core.errors import NoConnectionError
from rdv_core.events import Event, FastStartNegotiated, Picked
from rdv_core.wire import CONTINUE_LINE, DIAL, Addr

if TYPE_CHECKING:
    from rdv_core.client._attempt import Attempt


async def start_fast(
    attempt: Attempt,
    relay: Link,
    listeners: list[socket.socket],
    port: int,
    peer_addrs: Sequence[Addr],
    held: Sequence[Event] = (),
) -> Upgrader:
    """Pick the relay and start the fast-start stream on it (the client's hook).

    ``held``: the dialer's events of the ``101`` (``ServerResponded``, ``RelayReady``),
    written right after its first write, ahead of the pick's.

    Raises:
        NoConnectionError: the accepter's relay ended without ``CONTINUE`` (a dialer that
            went direct after all, a failed relay); the relay is closed.
    """
    emit, clock, client = attempt.emit, attempt.clock, attempt.client
    dialer = attempt.method == DIAL
    early = client.early_data if dialer and client.early_data is not None else None
    if dialer:
        try:
            upgrader = _upgrader(attempt, relay, listeners, port, peer_addrs, early, None)
        finally:
            for event in held:  # after the first write (or its failure)
                emit(event)
        emit(FastStartNegotiated(clock(), False))
    else:
        # The accepter's events wait too, until the dialer's first bytes (behind
        # CONTINUE) were handed over: in the lab's traces its three JSONL lines before
        # reading CONTINUE were most of the first byte's lateness (docs/PROTOCOL.md 16.9).
        hold = [*held, FastStartNegotiated(clock(), False)]
        try:
            won, failure = await accepter_relay_command(relay, hold.append, clock)
        except BaseException:
            for event in hold:
                emit(event)
            raise
        if not won:
            for event in hold:
                emit(event)
            cause = f"relay: {failure or RELAY_CLOSED}"
            raise NoConnectionError("no conn to the peer could be used", (cause,))
        upgrader = _upgrader(attempt, relay, listeners, port, peer_addrs, None, hold)
        # The dialer's HELLO and first bytes came with CONTINUE and wait in the relay
        # reader's buffer: one loop turn lets the stream's read task hand them to the
        # application now, before the events and the caller's own work.
        await asyncio.sleep(0)
        upgrader.release_held()  # in order, FirstByteReceived (its own time) among them
    # The relay path is the stream until a direct path carries it: silent, it is given up
    # in bounded time, not TCP's (docs/PROTOCOL.md 16.11).
    watch_relay(upgrader.stream, relay.writer.get_extra_info("socket"))
    elapsed = clock()
    emit(Picked(elapsed, relay.candidate, True, elapsed))
    return upgrader


def _upgrader(
    attempt: Attempt,
    relay: Link,
    listeners: list[socket.socket],
    port: int,
    peer_addrs: Sequence[Addr],
    early: Callable[[], bytes] | None,
    held: list[Event] | None,
) -> Upgrader:
    client, dialer = attempt.client, attempt.method == DIAL
    return Upgrader(
        method=attempt.method,
        token=attempt.token,
        spaces=client.spaces,
        port=port,
        peer_addrs=peer_addrs,
        relay=relay,
        listeners=listeners,
        listen=open_listeners,
        clock=attempt.clock,
        emit=attempt.emit,
        new_id=attempt.new_id,
        # One cap over all attempts, on the dialer's schedule: the accepter races at
        # every SYNC the peer writes (docs/PROTOCOL.md 16.5, the session's budget).
        budget=SessionBudget(
            client.syn_budget, client.syn_history, (0.0,) * QUICK_ATTEMPTS + LATER_ATTEMPTS
        ),
        # The dialer's CONTINUE and HELLO leave now, in one write, ahead of any event.
        prefix=CONTINUE_LINE if dialer else b"",
        # ... and the application's first bytes, when it gave them before the pick.
        first_data=early() if early is not None else b"",
        held=held,
    )
