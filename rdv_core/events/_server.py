"""Events of the rdv server: lobby, matching, p2p reports, relaying, shutdown."""

from __future__ import annotations

from rdv_core.events._base import Event, event


@event
class PeerJoined(Event):
    """A valid rdv request entered the lobby."""

    method: str
    token: str
    remote: str
    observed_addr: str | None
    self_addrs: tuple[str, ...] = ()


@event
class PairMatched(Event):
    """Both peers are present; ``lobby_s`` is how long the first one waited."""

    pair_id: int
    token: str
    dialer: str
    accepter: str
    lobby_s: float


@event
class P2PReported(Event):
    """The dialer wrote ``OTHER addr``: the pair went direct."""

    pair_id: int
    addr: str


@event
class RelayStarted(Event):
    """The dialer picked the relay: the server copies bytes both ways."""

    pair_id: int


@event
class RelayEnded(Event):
    """A pair's server conns closed, with bytes copied each way and why it ended."""

    pair_id: int
    dialer_to_accepter: int
    accepter_to_dialer: int
    duration_s: float
    reason: str
    relayed: bool = True


@event
class LobbyTimedOut(Event):
    """No peer came in time (``408``)."""

    method: str
    token: str
    remote: str


@event
class Replaced(Event):
    """A newer request with the same token and method evicted this one (``409``)."""

    method: str
    token: str
    remote: str


@event
class LobbyLeft(Event):
    """A lobby client sent a byte or disconnected, and lost its slot."""

    method: str
    token: str
    remote: str
    reason: str


@event
class Rejected(Event):
    """A request was answered with an error status.

    ``token`` is the request's token once the lobby took it (a ``410`` for a used code,
    a hook's refusal, a ``503``), "" when the request was refused before it named one.
    """

    status: int
    reason: str
    remote: str
    method: str = ""
    token: str = ""


@event
class ServerClosed(Event):
    """The server shut down; ``lobby`` and ``pairs`` were still open at that moment."""

    lobby: int
    pairs: int
