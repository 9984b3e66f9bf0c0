"""The session frame codec (sans-IO): typed frames to plaintext bytes and back.

A frame's plaintext is one type byte and a body; sealed, it travels as one record
(:mod:`~rdv_core.session._record`, which also holds the size bounds). Bulk frames have
binary bodies (``data``: transfer id u32 + bytes; ``ack``: transfer id u32 + byte
count u64; ``bundle``: whole small files, :mod:`~rdv_core.session._bundle`); control
frames have a UTF-8 JSON object body, checked field by field. Every size is bounded:
an unknown type or a malformed or oversized body raises :class:`FrameError`, which
ends the session with a clear message. The protocol version is exchanged in the
key-exchange prelude and again in ``hello``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

from rdv_core.session import _bundle
from rdv_core.session._bundle import Bundle
from rdv_core.session._errors import FrameError
from rdv_core.session._record import DATA_HEADER, MAX_CONTROL_BODY, MAX_DATA_PAYLOAD, MAX_PLAINTEXT

#: Largest chat message, in UTF-8 bytes.
MAX_CHAT_BYTES = 16 * 1024

_DATA_ID = struct.Struct("!BI")
_ACK = struct.Struct("!BIQ")
_MAX_ID = (1 << 32) - 1
_MISSING: Any = object()
_MAX_SIZE = (1 << 63) - 1


class FrameType(IntEnum):
    """The type byte of a frame's plaintext."""

    HELLO = 1
    CHAT = 2
    OFFER = 3
    ACCEPT = 4
    REJECT = 5
    DATA = 6
    ACK = 7
    DONE = 8
    RESULT = 9
    FAIL = 10
    ERROR = 11
    CLOSE = 12
    #: The two-sided diagnosis (docs/PROTOCOL.md section 15.5); only to peers announcing it.
    DIAGNOSIS = 13
    #: Whole small files (docs/PROTOCOL.md section 12.13); only to peers announcing it.
    BUNDLE = _bundle.BUNDLE_TYPE
    #: The receiver's answer to one bundle: the files of it that failed.
    BUNDLED = 15


@dataclass(frozen=True, slots=True)
class Hello:
    """First sealed frame of each side: key confirmation and capabilities."""

    version: int
    agent: str = ""
    features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat message."""

    text: str


@dataclass(frozen=True, slots=True)
class OfferedFile:
    """One file of an offer: ``path`` is relative, ``/``-separated; ``mtime_ns`` since epoch."""

    id: int
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class SendTotals:
    """What one send (one ``send_paths`` call) holds in all, named by each of its offers.

    ``first`` is the batch number of the send's first offer: offers with the same
    ``first`` belong to one send (docs/PROTOCOL.md section 12.12).
    """

    first: int
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Offer:
    """The sender proposes files; the receiver answers with ``accept`` or ``reject``."""

    batch: int
    files: tuple[OfferedFile, ...]
    #: Optional (absent from older senders): the whole send this batch is part of.
    send: SendTotals | None = None


@dataclass(frozen=True, slots=True)
class Accept:
    """The receiver takes an offer: per file, the verified prefix it already holds.

    ``offsets`` maps transfer id to the byte where data must start (0, or the
    length of a kept partial file: resume). ``failed`` lists files the receiver
    cannot store (permission denied, ...), with the reason.
    """

    batch: int
    offsets: tuple[tuple[int, int], ...]
    failed: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Reject:
    """The receiver declines a whole offer."""

    batch: int
    reason: str


@dataclass(frozen=True, slots=True)
class Data:
    """A chunk of file data (the next bytes of transfer ``id``)."""

    id: int
    payload: bytes | memoryview


@dataclass(frozen=True, slots=True)
class Ack:
    """The receiver has written ``received`` bytes (from 0, including a resumed prefix)."""

    id: int
    received: int


@dataclass(frozen=True, slots=True)
class Done:
    """The sender sent every byte; ``digest`` is the whole file's digest (hex).

    ``algorithm`` names the digest (``blake3``, see ``files.DIGEST``) so that a receiver
    never compares digests of different algorithms: it fails the file instead.
    """

    id: int
    digest: str
    algorithm: str


@dataclass(frozen=True, slots=True)
class Result:
    """The receiver's verdict on a file: verified (``ok``) or not, with why."""

    id: int
    ok: bool
    digest: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Bundled:
    """The receiver's verdict on a bundle: every file not in ``failed`` is verified."""

    number: int
    failed: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Fail:
    """One transfer failed on ``side`` (disk full, permission, read error); the session goes on."""

    id: int
    side: Literal["sender", "receiver"]
    reason: str
    #: Optional (docs/PROTOCOL.md 12.14): the user stopped this file, nothing failed.
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Error:
    """A fatal error: the session ends after this frame."""

    message: str


@dataclass(frozen=True, slots=True)
class Close:
    """A clean end of the session."""

    reason: str = "closed"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A doctor report and race events (checked by :mod:`rdv_core.session._diagnosis`)."""

    body: dict[str, Any]


Frame = (
    (Hello | Chat | Offer | Accept | Reject | Data | Ack | Done | Result | Fail | Error | Close)
    | Diagnosis
    | Bundle
    | Bundled
)


# ----- plaintext encoding


def encode(frame: Frame) -> bytes:
    """The plaintext of a frame (type byte + body).

    Raises:
        FrameError: the frame breaks a bound (chat too long, body too large, ...).
    """
    if isinstance(frame, Data):
        if len(frame.payload) > MAX_DATA_PAYLOAD:
            raise FrameError("data payload too large")
        return _DATA_ID.pack(FrameType.DATA, frame.id) + bytes(frame.payload)
    if isinstance(frame, Ack):
        return _ACK.pack(FrameType.ACK, frame.id, frame.received)
    if isinstance(frame, Bundle):
        return _bundle.encode(frame)
    kind, body = _control_body(frame)
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    if len(raw) > MAX_CONTROL_BODY:
        raise FrameError(f"{kind.name.lower()} frame too large ({len(raw)} bytes)")
    return bytes([kind]) + raw


def _control_body(frame: Frame) -> tuple[FrameType, dict[str, Any]]:
    match frame:
        case Hello(version, agent, features):
            return FrameType.HELLO, {"version": version, "agent": agent, "features": features}
        case Chat(text):
            if len(text.encode()) > MAX_CHAT_BYTES:
                raise FrameError(f"chat message too long (at most {MAX_CHAT_BYTES} bytes)")
            return FrameType.CHAT, {"text": text}
        case Offer(batch, files, send):
            offer: dict[str, Any] = {
                "batch": batch,
                "files": [[f.id, f.path, f.size, f.mtime_ns] for f in files],
            }
            if send is not None:
                offer["send"] = [send.first, send.files, send.bytes]
            return FrameType.OFFER, offer
        case Accept(batch, offsets, failed):
            return FrameType.ACCEPT, {"batch": batch, "offsets": offsets, "failed": failed}
        case Reject(batch, reason):
            return FrameType.REJECT, {"batch": batch, "reason": reason}
        case Done(id_, digest, algorithm):
            return FrameType.DONE, {"id": id_, "digest": digest, "algorithm": algorithm}
        case Result(id_, ok, digest, reason):
            return FrameType.RESULT, {"id": id_, "ok": ok, "digest": digest, "reason": reason}
        case Bundled(number, failed):
            return FrameType.BUNDLED, {"bundle": number, "failed": failed}
        case Fail(id_, side, reason, cancelled):
            fail: dict[str, Any] = {"id": id_, "side": side, "reason": reason}
            if cancelled:  # absent otherwise: the frame older peers know, byte for byte
                fail["cancelled"] = True
            return FrameType.FAIL, fail
        case Error(message):
            return FrameType.ERROR, {"message": message}
        case Close(reason):
            return FrameType.CLOSE, {"reason": reason}
        case Diagnosis(body):
            return FrameType.DIAGNOSIS, body
    raise FrameError(f"cannot encode {type(frame).__name__}")


# ----- plaintext decoding


def decode(plain: bytes | bytearray | memoryview) -> Frame:
    """Decode one frame's plaintext. ``data`` payloads are zero-copy views of ``plain``.

    Raises:
        FrameError: unknown type, bad size, malformed or out-of-bounds body.
    """
    view = memoryview(plain)
    if len(view) == 0:
        raise FrameError("empty frame")
    kind = view[0]
    if kind == FrameType.DATA:
        if len(view) < DATA_HEADER or len(view) > MAX_PLAINTEXT:
            raise FrameError(f"data frame of bad size {len(view)}")
        (_, id_) = _DATA_ID.unpack(view[:DATA_HEADER])
        return Data(id_, view[DATA_HEADER:])
    if kind == FrameType.ACK:
        if len(view) != _ACK.size:
            raise FrameError(f"ack frame of bad size {len(view)}")
        _, id_, received = _ACK.unpack(view)
        return Ack(id_, received)
    if kind == FrameType.BUNDLE:
        return _bundle.decode(view)
    try:
        frame_type = FrameType(kind)
    except ValueError:
        raise FrameError(f"unknown frame type 0x{kind:02x}") from None
    if len(view) - 1 > MAX_CONTROL_BODY:
        raise FrameError(f"{frame_type.name.lower()} frame too large")
    try:
        body = json.loads(bytes(view[1:]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FrameError(f"malformed {frame_type.name.lower()} frame: {exc}") from None
    if not isinstance(body, dict):
        raise FrameError(f"malformed {frame_type.name.lower()} frame: not an object")
    return _decode_control(frame_type, _Body(frame_type, body))


class _Body:
    """Typed, bounded access to a control frame's JSON object."""

    __slots__ = ("_data", "_kind")

    def __init__(self, kind: FrameType, data: dict[str, Any]) -> None:
        self._kind = kind
        self._data = data

    def _bad(self, name: str, what: str) -> FrameError:
        return FrameError(f"malformed {self._kind.name.lower()} frame: {name!r} {what}")

    def get(self, name: str, *, optional: bool = False) -> Any:
        if name not in self._data:
            if optional:
                return None
            raise self._bad(name, "is missing")
        return self._data[name]

    def int_(self, name: str, value: Any = _MISSING, *, top: int = _MAX_SIZE) -> int:
        value = self.get(name) if value is _MISSING else value
        if type(value) is not int or not 0 <= value <= top:
            raise self._bad(name, f"must be an integer in 0..{top}")
        return value

    def str_(self, name: str, value: Any = _MISSING, *, limit: int = 4096) -> str:
        value = self.get(name) if value is _MISSING else value
        if not isinstance(value, str) or len(value) > limit:
            raise self._bad(name, f"must be a string of at most {limit} characters")
        return value

    def bool_(self, name: str) -> bool:
        value = self.get(name)
        if not isinstance(value, bool):
            raise self._bad(name, "must be a boolean")
        return value

    def list_(self, name: str, value: Any = _MISSING, *, limit: int = 100_000) -> list[Any]:
        value = self.get(name) if value is _MISSING else value
        if not isinstance(value, list) or len(value) > limit:
            raise self._bad(name, f"must be a list of at most {limit} items")
        return value


def _decode_control(kind: FrameType, body: _Body) -> Frame:
    match kind:
        case FrameType.DIAGNOSIS:
            return Diagnosis(body._data)
        case FrameType.HELLO:
            features = tuple(body.str_("features", f, limit=64) for f in body.list_("features"))
            return Hello(body.int_("version", top=255), body.str_("agent", limit=200), features)
        case FrameType.CHAT:
            text = body.str_("text", limit=MAX_CHAT_BYTES)
            if len(text.encode()) > MAX_CHAT_BYTES:  # the same bound as on send: bytes
                raise body._bad("text", f"must be at most {MAX_CHAT_BYTES} bytes of UTF-8")
            return Chat(text)
        case FrameType.OFFER:
            files = []
            for item in body.list_("files"):
                # The common case checked inline (a file per entry, 100,000 per send):
                # exactly what the checks below accept; anything else goes through
                # them, which say what is wrong.
                if type(item) is list and len(item) == 4:
                    id_, path, size, mtime = item
                    if (
                        type(id_) is int
                        and 0 <= id_ <= _MAX_ID
                        and type(path) is str
                        and len(path) <= 4096
                        and type(size) is int
                        and 0 <= size <= _MAX_SIZE
                        and type(mtime) is int
                        and 0 <= mtime <= _MAX_SIZE
                    ):
                        files.append(OfferedFile(id_, path, size, mtime))
                        continue
                entry = body.list_("files", item, limit=4)
                if len(entry) != 4:
                    raise FrameError("malformed offer frame: each file is [id, path, size, mtime]")
                files.append(
                    OfferedFile(
                        id=body.int_("id", entry[0], top=_MAX_ID),
                        path=body.str_("path", entry[1]),
                        size=body.int_("size", entry[2]),
                        mtime_ns=body.int_("mtime", entry[3]),
                    )
                )
            if not files:
                raise FrameError("malformed offer frame: no files")
            send = None
            if body.get("send", optional=True) is not None:
                totals = body.list_("send", body.get("send"), limit=3)
                if len(totals) != 3:
                    raise FrameError("malformed offer frame: 'send' is [first, files, bytes]")
                send = SendTotals(
                    body.int_("send", totals[0], top=_MAX_ID),
                    body.int_("send", totals[1], top=_MAX_ID),
                    body.int_("send", totals[2]),
                )
            return Offer(body.int_("batch", top=_MAX_ID), tuple(files), send)
        case FrameType.ACCEPT:
            offsets = tuple(
                (item[0], item[1])
                if type(item) is list
                and len(item) == 2
                and type(item[0]) is int
                and 0 <= item[0] <= _MAX_ID
                and type(item[1]) is int
                and 0 <= item[1] <= _MAX_SIZE
                else _pair(body, "offsets", item, lambda v: body.int_("offset", v))
                for item in body.list_("offsets")
            )
            failed = tuple(
                _pair(body, "failed", item, lambda v: body.str_("reason", v))
                for item in body.list_("failed")
            )
            return Accept(body.int_("batch", top=_MAX_ID), offsets, failed)
        case FrameType.REJECT:
            return Reject(body.int_("batch", top=_MAX_ID), body.str_("reason"))
        case FrameType.DONE:
            return Done(
                body.int_("id", top=_MAX_ID),
                body.str_("digest", limit=128),
                body.str_("algorithm", limit=32),
            )
        case FrameType.RESULT:
            return Result(
                body.int_("id", top=_MAX_ID),
                body.bool_("ok"),
                body.str_("digest", limit=128),
                body.str_("reason"),
            )
        case FrameType.BUNDLED:
            failed = tuple(
                _pair(body, "failed", item, lambda v: body.str_("reason", v))
                for item in body.list_("failed")
            )
            return Bundled(body.int_("bundle", top=_MAX_ID), failed)
        case FrameType.FAIL:
            side = body.str_("side", limit=8)
            if side not in ("sender", "receiver"):
                raise FrameError("malformed fail frame: 'side' must be sender or receiver")
            cancelled = body.get("cancelled", optional=True) is True
            id_, reason = body.int_("id", top=_MAX_ID), body.str_("reason")
            return Fail(id_, side, reason, cancelled)  # type: ignore[arg-type]
        case FrameType.ERROR:
            return Error(body.str_("message"))
        case FrameType.CLOSE:
            return Close(body.str_("reason", limit=200))
    raise FrameError(f"unexpected frame type {kind.name.lower()}")


def _pair(body: _Body, name: str, item: Any, second: Any) -> Any:
    entry = body.list_(name, item, limit=2)
    if len(entry) != 2:
        raise FrameError(f"malformed accept frame: each of {name!r} is a pair")
    return (body.int_("id", entry[0], top=_MAX_ID), second(entry[1]))
