"""The frame codec: round trips, bounds, and arbitrary bytes (hypothesis)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdv_core.session import _frames as fr
from rdv_core.session._crypto import TAG_SIZE
from rdv_core.session._errors import FrameError

EXAMPLES = [
    fr.Hello(1, "rdv-python", ("files", "chat")),
    fr.Chat("hello ✓"),
    fr.Offer(3, (fr.OfferedFile(1, "a/b.txt", 10, 1_700_000_000_000_000_000),)),
    fr.Accept(3, ((1, 0), (2, 4096)), ((5, "permission denied"),)),
    fr.Reject(3, "declined"),
    fr.Ack(9, 1 << 40),
    fr.Done(9, "ab" * 32, "blake3"),
    fr.Result(9, True, "ab" * 32, ""),
    fr.Fail(9, "receiver", "disk full"),
    fr.Error("boom"),
    fr.Close("bye"),
]


@pytest.mark.parametrize("frame", EXAMPLES, ids=lambda f: type(f).__name__)
def test_round_trip(frame: fr.Frame) -> None:
    assert fr.decode(fr.encode(frame)) == frame


def test_data_is_a_zero_copy_view() -> None:
    plain = fr.encode(fr.Data(7, b"payload"))
    frame = fr.decode(plain)
    assert isinstance(frame, fr.Data) and frame.id == 7
    assert isinstance(frame.payload, memoryview) and bytes(frame.payload) == b"payload"


@pytest.mark.parametrize(
    ("plain", "message"),
    [
        (b"", "empty frame"),
        (b"\x63{}", "unknown frame type 0x63"),
        (b"\x02[]", "not an object"),
        (b"\x02{}", "'text' is missing"),
        (b'\x02{"text": 5}', "'text' must be a string"),
        (b'\x03{"batch": 1, "files": []}', "no files"),
        (b'\x03{"batch": 1, "files": [[1, "a", -1, 0]]}', "'size' must be an integer"),
        (b'\x03{"batch": 1, "files": [[1, "a", true, 0]]}', "'size' must be an integer"),
        (b'\x08{"id": 4294967296, "digest": ""}', "'id' must be an integer"),
        (b'\x0a{"id": 1, "side": "both", "reason": ""}', "'side' must be sender or receiver"),
        (b"\x07\x00", "ack frame of bad size"),
        (b"\x06\x00\x00", "data frame of bad size"),
        (b"\x02\xff\xfe", "malformed chat frame"),
    ],
)
def test_malformed_frames(plain: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        fr.decode(plain)


def test_bounds() -> None:
    with pytest.raises(FrameError, match="chat message too long"):
        fr.encode(fr.Chat("x" * (fr.MAX_CHAT_BYTES + 1)))
    with pytest.raises(FrameError, match="data payload too large"):
        fr.encode(fr.Data(1, bytes(fr.MAX_DATA_PAYLOAD + 1)))
    with pytest.raises(FrameError, match="oversized frame"):
        fr.record_length(fr.RECORD_HEADER.pack(fr.MAX_RECORD + 1))
    with pytest.raises(FrameError, match="undersized frame"):
        fr.record_length(fr.RECORD_HEADER.pack(3))
    assert fr.record_length(fr.RECORD_HEADER.pack(fr.MAX_RECORD)) == fr.MAX_RECORD


def test_splitter_whole_and_byte_by_byte() -> None:
    records = [b"r" * 17, b"s" * 100, b"t" * 40]
    stream = b"".join(fr.RECORD_HEADER.pack(len(r)) + r for r in records)
    assert fr.RecordSplitter().feed(stream) == records
    splitter = fr.RecordSplitter()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += splitter.feed(stream[i : i + 1])
    assert out == records and splitter.pending == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_plaintext_never_crashes_the_decoder(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        fr.decode(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([t.value for t in fr.FrameType]), st.binary(max_size=512))
def test_arbitrary_bodies_of_known_types(kind: int, body: bytes) -> None:
    with contextlib.suppress(FrameError):
        fr.decode(bytes([kind]) + body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [t.value for t in fr.FrameType if t not in (fr.FrameType.DATA, fr.FrameType.ACK)]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "text",
                "batch",
                "files",
                "offsets",
                "failed",
                "id",
                "digest",
                "ok",
                "reason",
                "side",
                "message",
                "version",
                "agent",
                "features",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_arbitrary_json_bodies(kind: int, body: dict[str, object]) -> None:
    import json

    with contextlib.suppress(FrameError):
        fr.decode(bytes([kind]) + json.dumps(body).encode())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_arbitrary_stream_never_crashes_the_splitter(chunks: list[bytes]) -> None:
    splitter = fr.RecordSplitter()
    try:
        for chunk in chunks:
            for record in splitter.feed(chunk):
                assert TAG_SIZE < len(record) <= fr.MAX_RECORD
    except FrameError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.integers(0, 2**32 - 1), st.integers(0, 2**63 - 1))
def test_offer_round_trips(path: str, id_: int, size: int) -> None:
    frame = fr.Offer(id_, (fr.OfferedFile(id_, path, size, size),))
    assert fr.decode(fr.encode(frame)) == frame
