"""The event machinery: the base class, candidates, the registry, the clock, JSON lines.

The vocabularies live beside this module (:mod:`._race`, :mod:`._server`,
:mod:`._session`); every class decorated with :func:`event` is registered by name
so that :meth:`Event.from_json` can rebuild it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal, TypeVar, dataclass_transform

from rdv_core.events._fieldtypes import check_fields

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
        via: How it is dialled when not plainly: an extra uplink (``eth1 10.0.2.100``),
            ``NAT64`` (at its synthesized IPv6 address), or both (docs/PROTOCOL.md
            section 17); None for a plain dial through the default route.
    """

    id: int
    addr: str
    space: str
    origin: Origin
    via: str | None = None

    def describe(self) -> str:
        """A short human-readable description, e.g. ``#3 127.0.0.1:4000 (loopback4, self)``."""
        if self.origin == "relay":
            return f"#{self.id} relay via {self.addr}"
        via = f" via {self.via}" if self.via else ""
        return f"#{self.id} {self.addr}{via} ({self.space}, {self.origin})"


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
            ValueError: for an unknown type, a missing field or one whose value does not
                fit its type (:mod:`._fieldtypes`).
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
            check_fields(cls, kwargs)  # a file may come from anyone (rdv tui --replay)
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
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
