"""Events: every type round-trips through its JSON form and JSONL files."""

from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdv_core import events
from rdv_core.events import (
    Candidate,
    Clock,
    DialStarted,
    Event,
    EventRecorder,
    PeerJoined,
    RelayEnded,
    dumps,
    event_types,
    read_jsonl,
    write_jsonl,
)

ORIGINS = typing.get_args(events.Origin)
candidates = st.builds(
    Candidate,
    id=st.integers(0, 10_000),
    addr=st.text(max_size=30),
    space=st.text(max_size=12),
    origin=st.sampled_from(ORIGINS),
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values for a field's type hint, restricted to what JSON can carry exactly."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-(2**53), 2**53)
    if hint is str:
        return st.text(max_size=30)
    if hint is type(None):
        return st.none()
    if hint is Candidate:
        return candidates
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(a) for a in args])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0]), max_size=4).map(tuple)
    if origin is dict and args[0] is str:
        return st.dictionaries(st.text(max_size=8), strategy_for(args[1]), max_size=3)
    raise AssertionError(f"no JSON round trip known for field type {hint!r}: use tuple, not list")


def instances(cls: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


EVENT_TYPES = sorted(event_types().items())


def test_vocabulary_is_registered() -> None:
    names = set(event_types())
    for name in (
        "AttemptStarted",
        "Picked",
        "PeerJoined",
        "RelayEnded",
        "FileCompleted",
        "SessionClosed",
    ):
        assert name in names
    assert "Event" not in names


@pytest.mark.parametrize(("name", "cls"), EVENT_TYPES, ids=[n for n, _ in EVENT_TYPES])
def test_event_round_trips(name: str, cls: type[Event]) -> None:
    assert dataclasses.is_dataclass(cls) and issubclass(cls, Event)
    assert "type" not in {f.name for f in dataclasses.fields(cls)}, "'type' is the JSON tag"

    @settings(max_examples=25, deadline=None)
    @given(event=instances(cls))
    def round_trip(event: Event) -> None:
        data = event.to_json()
        assert data["type"] == name == event.type
        assert set(data) == {"type"} | {f.name for f in dataclasses.fields(cls)}
        assert Event.from_json(json.loads(json.dumps(data))) == event
        stream = io.StringIO()
        write_jsonl([event, event], stream)
        assert list(read_jsonl(io.StringIO(stream.getvalue()))) == [event, event]
        assert json.loads(dumps(event)) == json.loads(json.dumps(data))
        assert "\n" not in dumps(event)

    round_trip()


@pytest.mark.parametrize(("name", "cls"), EVENT_TYPES, ids=[n for n, _ in EVENT_TYPES])
def test_events_are_frozen_and_slotted(name: str, cls: type[Event]) -> None:
    assert "__slots__" in cls.__dict__, f"{name} must be slotted"
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_candidate_is_rebuilt_as_candidate() -> None:
    candidate = Candidate(3, "127.0.0.1:4000", "loopback4", "self")
    data = json.loads(dumps(DialStarted(0.25, candidate)))
    assert data == {
        "type": "DialStarted",
        "t": 0.25,
        "candidate": {
            "id": 3,
            "addr": "127.0.0.1:4000",
            "space": "loopback4",
            "origin": "self",
            "via": None,
        },
    }
    back = Event.from_json(data)
    assert isinstance(back, DialStarted) and isinstance(back.candidate, Candidate)
    assert back.candidate == candidate
    assert candidate.describe() == "#3 127.0.0.1:4000 (loopback4, self)"
    assert Candidate(0, "h:1", "relay", "relay").describe() == "#0 relay via h:1"
    # An extra uplink or NAT64 says how the candidate is dialled; old JSON has no "via".
    uplink = Candidate(4, "203.0.113.20:4000", "public4", "self", "eth1 10.0.2.100")
    assert uplink.describe() == "#4 203.0.113.20:4000 via eth1 10.0.2.100 (public4, self)"
    old = {k: v for k, v in data["candidate"].items() if k != "via"}
    rebuilt = Event.from_json({**data, "candidate": old})
    assert isinstance(rebuilt, DialStarted) and rebuilt.candidate == candidate


def test_tuples_come_back_as_tuples_and_defaults_fill_in() -> None:
    event = PeerJoined(1.0, "DIAL", "tok", "1.2.3.4:5", None, ("1.2.3.4:5", "[::1]:5"))
    back = Event.from_json(json.loads(dumps(event)))
    assert back == event and isinstance(back, PeerJoined) and isinstance(back.self_addrs, tuple)
    partial = {"type": "RelayEnded", "t": 0, "pair_id": 1, "dialer_to_accepter": 2}
    partial |= {"accepter_to_dialer": 3, "duration_s": 0.5, "reason": "eof"}
    assert Event.from_json(partial) == RelayEnded(0, 1, 2, 3, 0.5, "eof", relayed=True)


def test_extra_keys_are_ignored() -> None:
    data = {"type": "SessionClosed", "t": 1.5, "reason": "closed", "added_later": [1]}
    assert Event.from_json(data) == events.SessionClosed(1.5, "closed")


_CAND = {"id": 1, "addr": "192.0.2.1:5", "space": "public4", "origin": "self"}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"type": "NoSuchEvent", "t": 0}, "unknown event type 'NoSuchEvent'"),
        ({"t": 0}, "unknown event type None"),
        ({"type": "Event", "t": 0}, "unknown event type"),
        ({"type": "SessionClosed", "t": 0}, "missing field 'reason'"),
        ({"type": "DialStarted", "t": 0, "candidate": {"id": 1}}, "invalid candidate"),
        ({"type": "SessionClosed", "t": 0, "reason": "x", "t2": 1}, None),
        # A file may come from anyone: each field must fit its type (rdv tui --replay).
        ({"type": "SessionClosed", "t": "x", "reason": "x"}, "field 't' is 'x', not float"),
        ({"type": "SessionClosed", "t": True, "reason": "x"}, "field 't' is True, not float"),
        ({"type": "SessionClosed", "t": 0, "reason": 5}, "field 'reason' is 5, not str"),
        ({"type": "DialStarted", "t": 0, "candidate": 5}, "field 'candidate' is 5"),
        (
            {"type": "DialStarted", "t": 0, "candidate": {**_CAND, "id": "one"}},
            "field 'candidate.id' is 'one', not int",
        ),
        (
            {
                "type": "ServerResponded",
                "t": 0,
                "observed_addr": None,
                "peer_addrs": [1],
                "lobby_s": 0.1,
            },
            "field 'peer_addrs' is \\(1,\\)",
        ),
        # A word this version does not know (a newer reason or origin) still reads.
        ({"type": "DialStarted", "t": 0, "candidate": {**_CAND, "origin": "future"}}, None),
    ],
)
def test_from_json_errors(data: dict[str, Any], match: str | None) -> None:
    if match is None:
        assert Event.from_json(data).type == data["type"]
        return
    with pytest.raises(ValueError, match=match):
        Event.from_json(data)


def test_from_json_rejects_non_objects() -> None:
    with pytest.raises(ValueError):
        Event.from_json([1, 2])  # type: ignore[arg-type]


def test_read_jsonl_skips_blank_lines_and_names_bad_lines() -> None:
    good = dumps(events.SessionClosed(1.0, "closed"))
    assert list(read_jsonl(["\n", good + "\n", "   \n"])) == [events.SessionClosed(1.0, "closed")]
    with pytest.raises(ValueError, match="line 2: not JSON"):
        list(read_jsonl([good, "{oops"]))
    with pytest.raises(ValueError, match="line 1: not a JSON object"):
        list(read_jsonl(["[1]"]))
    with pytest.raises(ValueError, match="line 1: unknown event type"):
        list(read_jsonl(['{"type": "Nope"}']))


def test_recorder_collects_and_streams() -> None:
    stream = io.StringIO()
    recorder = EventRecorder(stream)
    first = events.ChatSent(0.1, "hi")
    second = events.ChatReceived(0.2, "hello")
    recorder(first)
    recorder(second)
    assert recorder.events == [first, second]
    assert recorder.of_type(events.ChatReceived) == [second]
    assert list(read_jsonl(io.StringIO(stream.getvalue()))) == [first, second]
    plain = EventRecorder()
    plain(first)
    assert plain.events == [first]


def test_clock_is_monotonic_from_its_start() -> None:
    clock = Clock()
    a, b = clock(), clock()
    assert 0 <= a <= b < 5
    assert Clock(start=clock.start - 10)() >= 10


def test_file_progress_eta() -> None:
    progress = events.FileProgress(0, 1, "out", done=50, total=150, rate=25.0)
    assert progress.eta_s == 4.0
    assert events.FileProgress(0, 1, "out", 0, 10, 0.0).eta_s is None
