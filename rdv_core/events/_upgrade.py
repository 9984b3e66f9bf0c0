"""Events of fast start: the stream runs on the relay and moves to a direct path.

docs/PROTOCOL.md section 16. The background race's own dials are race events
(``DialStarted``, ``HandshakeOk`` ...) with fresh candidate ids; these say what the
upgrade as a whole did.
"""

from __future__ import annotations

from typing import Final

from rdv_core.events._base import Candidate, Event, event

#: The final ``UpgradeFailed`` reason of a side whose fast start tried nothing (no peer
#: address in its spaces, no listener: ``rdv_core/client/_upgrade.py``); the doctor's verdict
#: names that side as the reason for the relay.
NO_CANDIDATE: Final = "no direct candidate"


@event
class FastStartNegotiated(Event):
    """Both peers offered fast start: the dialer takes the relay at once.

    Attributes:
        confirmed: False when emitted at the pick; the ``HELLO`` of the peer, read from
            the relay, confirms it end to end (a second event with True).
        origin: The attempt's ``t = 0`` on this host's ``time.monotonic()`` (in the
            confirmed event), so that both peers' events on one host line up: the NAT
            lab times the first byte from the dialer's ``101`` to the accepter's read
            (docs/PROTOCOL.md section 16.2). None when unknown.
    """

    confirmed: bool
    origin: float | None = None


@event
class FirstByteReceived(Event):
    """The peer's first application byte arrived (``on_relay``: through the relay): with
    fast start, about one relay one-way trip after the ``101``."""

    on_relay: bool


@event
class UpgradeStarted(Event):
    """The stream is on the relay; the background race for a direct path begins."""

    peer_addrs: tuple[str, ...]


@event
class UpgradeAttempt(Event):
    """One timed attempt: both peers dial now (``relay_rtt_s`` measured over the relay;
    the dialer waited half of it after its SYNC, so that both SYNs leave together)."""

    attempt: int
    relay_rtt_s: float | None


@event
class Upgraded(Event):
    """Our direction moved to a direct path (the explicit switch point).

    Attributes:
        candidate: The direct conn's candidate.
        addr: The peer's address on it.
        after_s: Seconds from the relay pick to the switch.
        attempt: Which attempt found it.
    """

    candidate: Candidate
    addr: str
    after_s: float
    attempt: int


@event
class UpgradeFailed(Event):
    """An attempt (or the whole upgrade, when ``final``) ended without a direct path,
    or a direct path died before it was proven: the stream is on the relay.

    Attributes:
        back_on_relay: True when the stream had moved to this attempt's direct path
            (an ``Upgraded`` before) and went back to the relay: the path died, or
            the peer went back (docs/PROTOCOL.md section 16.6). False when the stream
            never left the relay.
    """

    attempt: int
    reason: str
    final: bool
    back_on_relay: bool = False


@event
class RelayRetired(Event):
    """The direct path carried frames both ways: the relay is closed (``after_s`` since
    the switch)."""

    after_s: float
