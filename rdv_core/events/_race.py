"""Events of one client attempt: rendezvous, every candidate of the race, the pick."""

from __future__ import annotations

from rdv_core.events._base import Candidate, Event, FailReason, event


@event
class AttemptStarted(Event):
    """``dial()`` or ``accept()`` began."""

    method: str
    server: str
    spaces: str
    picker: str


@event
class SelfAddrsGathered(Event):
    """Our own candidate addresses, all on the shared local ``port``."""

    port: int
    addrs: tuple[str, ...]


@event
class ServerConnected(Event):
    """TCP (and TLS) to the rdv server is up; ``connect_s`` is how long that took.

    Through an HTTP proxy (docs/PROTOCOL.md section 17.1), ``server_addr`` is the proxy's
    address, ``proxy`` names it (never its credentials) and ``proxy_agent`` is what it
    said it is (its ``Proxy-Agent``, ``Via`` or ``Server`` header, if any).
    """

    server_addr: str
    local_addr: str
    connect_s: float
    tls: bool = False
    tls_version: str | None = None
    proxy: str | None = None
    proxy_agent: str | None = None


@event
class ServerResponded(Event):
    """The server upgraded: the peer is present. ``lobby_s`` is the wait since the request."""

    observed_addr: str | None
    peer_addrs: tuple[str, ...]
    lobby_s: float


@event
class ObservedAddrWarning(Event):
    """The observed address is missing or not public IPv4: p2p across NATs will likely fail."""

    observed_addr: str | None
    message: str


@event
class ServerRejected(Event):
    """The server answered with an error status instead of ``101``."""

    status: int
    reason: str
    body: str


@event
class ServerLost(Event):
    """The server conn was lost while we waited in the lobby, before the pair was made.

    ``why`` says how, in words (``connection refused``, ``503 rdv server shutting down,
    try again``); the attempt rejoins the lobby with the same token at the same URL in
    ``rejoin_in_s`` seconds: rejoin number ``rejoin`` of at most ``rejoins``
    (docs/PROTOCOL.md section 18).
    """

    why: str
    rejoin_in_s: float
    rejoin: int
    rejoins: int


@event
class LobbyRejoined(Event):
    """Our request is in the lobby again (rejoin number ``rejoin``), ``away_s`` after the
    server conn was first lost: a peer that comes now finds us (docs/PROTOCOL.md section 18)."""

    rejoin: int
    away_s: float


@event
class CandidateSkipped(Event):
    """A peer address that will not be dialled (its space is not enabled, ...)."""

    candidate: Candidate
    reason: str


@event
class DialStarted(Event):
    """A connector began dialling the candidate from the shared port."""

    candidate: Candidate


@event
class DialRetried(Event):
    """A refused or reset dial is tried again (``attempt`` counts from 2)."""

    candidate: Candidate
    attempt: int
    reason: FailReason
    errno: int | None = None


@event
class InboundAccepted(Event):
    """Our listener accepted a connection; its header line is not checked yet."""

    candidate: Candidate


@event
class InboundRejected(Event):
    """An inbound connection was closed at once (its space is not enabled, ...)."""

    candidate: Candidate
    reason: str


@event
class CandidateConnected(Event):
    """TCP is up on an outbound dial (possibly a simultaneous open)."""

    candidate: Candidate


@event
class HandshakeOk(Event):
    """Both header lines were exchanged and checked: the conn is a usable p2p conn."""

    candidate: Candidate


@event
class HandshakeFailed(Event):
    """The peer header line was wrong (``misdial``), never came (``timeout``) or EOF."""

    candidate: Candidate
    reason: FailReason
    detail: str = ""


@event
class CandidateFailed(Event):
    """A dial failed for good, with the classified reason and errno."""

    candidate: Candidate
    reason: FailReason
    errno: int | None = None
    detail: str = ""


@event
class RelayReady(Event):
    """The server conn can be used as a relay (right after the ``101``)."""

    candidate: Candidate


@event
class Picked(Event):
    """The conn that carries the application data; ``elapsed_s`` since the attempt began."""

    candidate: Candidate
    is_relay: bool
    elapsed_s: float


@event
class Discarded(Event):
    """A conn that worked but lost, closed without further bytes."""

    candidate: Candidate
    reason: str


@event
class AttemptFailed(Event):
    """The attempt ended without a conn."""

    reason: str
    detail: str = ""
