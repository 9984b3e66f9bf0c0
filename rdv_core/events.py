"""Structured events: every step of a race, of the server and of a peer session.

Each event is a frozen, slotted dataclass whose ``t`` is seconds since the attempt
(or the server, or the session) started, on the monotonic clock. Events are
past-tense facts. Each has a stable JSON form, ``{"type": <class name>, ...fields}``,
so a race can be saved as JSONL, attached to a bug report, replayed in the TUI and
compared between the two peers. Events never carry secrets (session codes, keys).

Delivery is a plain callback (:data:`EventCallback`); tests pass ``list.append``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal, TypeVar, dataclass_transform

Origin = Literal["self", "observed", "inbound", "relay"]
"""Where a candidate came from: a peer's self-reported address, the address the server
observed for the peer, a connection the peer opened to our listener, or the server conn."""

FailReason = Literal[
    "refused", "reset", "unreachable", "timeout", "misdial", "cancelled", "eof", "protocol", "error"
]
"""Why a candidate failed, classified from the errno or from the protocol."""

_REGISTRY: dict[str, type[Event]] = {}

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible connection to the peer.

    Attributes:
        id: Unique within one attempt; inbound conns and the relay get their own ids.
        addr: ``ip:port`` of the peer end (for the relay, the server's address).
        space: Address space name (``public4``, ``loopback6``, ...; ``relay`` for the relay).
        origin: How we learned of it.
    """

    id: int
    addr: str
    space: str
    origin: Origin

    def describe(self) -> str:
        """A short human-readable description, e.g. ``#3 127.0.0.1:4000 (loopback4, self)``."""
        if self.origin == "relay":
            return f"#{self.id} relay via {self.addr}"
        return f"#{self.id} {self.addr} ({self.space}, {self.origin})"


@dataclass(frozen=True, slots=True)
class Event:
    """Base class: ``t`` is seconds since the start, monotonic."""

    t: float

    @property
    def type(self) -> str:
        """The event's type name, as in its JSON form."""
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form: ``{"type": ..., "t": ..., <fields>}``."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> Event:
        """Rebuild an event from its JSON form.

        Raises:
            ValueError: for an unknown type or missing fields.
        """
        if not isinstance(data, dict):
            raise ValueError(f"an event is a JSON object, not {type(data).__name__}")
        kind = data.get("type")
        cls = _REGISTRY.get(str(kind))
        if cls is None:
            raise ValueError(f"unknown event type {kind!r}")
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                if (
                    f.default is not dataclasses.MISSING
                    or f.default_factory is not dataclasses.MISSING
                ):
                    continue
                raise ValueError(f"{kind}: missing field {f.name!r}")
            kwargs[f.name] = _from_jsonable(f.name, data[f.name])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"{kind}: {exc}") from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, Candidate):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _from_jsonable(name: str, value: Any) -> Any:
    if name == "candidate" and isinstance(value, dict):
        try:
            return Candidate(**value)
        except TypeError as exc:
            raise ValueError(f"invalid candidate {value!r}: {exc}") from exc
    if isinstance(value, list):
        return tuple(_from_jsonable("", v) for v in value)
    return value


EventCallback = Callable[[Event], None]

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def event(cls: type[T]) -> type[T]:
    """Class decorator for event types: a frozen, slotted dataclass, registered by name."""
    made = dataclass(frozen=True, slots=True)(cls)
    _REGISTRY[made.__name__] = made  # type: ignore[assignment]
    return made


class Clock:
    """Monotonic seconds since construction: the ``t`` of every event of one attempt."""

    __slots__ = ("start",)

    def __init__(self, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start

    def __call__(self) -> float:
        return time.monotonic() - self.start


# ----- client race


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
    """TCP (and TLS) to the rdv server is up; ``connect_s`` is how long that took."""

    server_addr: str
    local_addr: str
    connect_s: float
    tls: bool = False
    tls_version: str | None = None


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


# ----- server


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
    """A request was answered with an error status."""

    status: int
    reason: str
    remote: str
    method: str = ""


@event
class ServerClosed(Event):
    """The server shut down; ``lobby`` and ``pairs`` were still open at that moment."""

    lobby: int
    pairs: int


# ----- session


@event
class SessionEstablished(Event):
    """The encrypted session is up: keys confirmed on both sides."""

    is_relay: bool
    peer_addr: str
    version: int


@event
class ChatSent(Event):
    """We sent a chat message."""

    text: str


@event
class ChatReceived(Event):
    """The peer sent a chat message."""

    text: str


@event
class FileOffered(Event):
    """A file was offered (``direction`` is ``in`` or ``out``)."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    size: int


@event
class FileAccepted(Event):
    """The receiver accepted a file; ``offset`` is where the data starts (resume)."""

    transfer_id: int
    direction: Literal["in", "out"]
    offset: int


@event
class FileRejected(Event):
    """The receiver declined a file."""

    transfer_id: int
    direction: Literal["in", "out"]
    reason: str


@event
class FileProgress(Event):
    """Progress of one transfer. Cheap and mergeable: a newer one replaces an older one."""

    transfer_id: int
    direction: Literal["in", "out"]
    done: int
    total: int
    rate: float

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, or None when the rate is unknown."""
        if self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


@event
class TransferResumed(Event):
    """A transfer continues from ``offset`` after a broken connection."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    offset: int


@event
class FileCompleted(Event):
    """A transfer finished and the receiver verified the whole-file digest."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    size: int
    digest: str
    path: str = ""


@event
class FileFailed(Event):
    """A transfer failed; a partial file is kept for resume when possible."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    reason: str


@event
class SessionClosed(Event):
    """The session ended (``reason`` is ``closed`` on a clean close)."""

    reason: str


# ----- recording


def event_types() -> dict[str, type[Event]]:
    """Every event type by name."""
    return dict(_REGISTRY)


@dataclass(slots=True)
class EventRecorder:
    """Collects events, optionally writing each as one JSON line to ``stream``."""

    stream: IO[str] | None = None
    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if self.stream is not None:
            self.stream.write(dumps(event) + "\n")
            self.stream.flush()

    def of_type(self, cls: type[E]) -> list[E]:
        """The recorded events of one type, in order."""
        return [e for e in self.events if isinstance(e, cls)]


def dumps(event: Event) -> str:
    """One event as a compact JSON line (no newline)."""
    return json.dumps(event.to_json(), separators=(",", ":"))


def write_jsonl(events: Iterable[Event], stream: IO[str]) -> None:
    """Write events as JSON lines."""
    for event in events:
        stream.write(dumps(event) + "\n")


def read_jsonl(stream: Iterable[str]) -> Iterator[Event]:
    """Read events from JSON lines, skipping blank lines.

    Raises:
        ValueError: on a line that is not a known event.
    """
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"line {number}: not a JSON object")
        try:
            yield Event.from_json(data)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
