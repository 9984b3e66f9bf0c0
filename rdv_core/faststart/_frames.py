"""The fast-start frames, sans-IO (docs/PROTOCOL.md section 16.3).

After ``CONTINUE`` every byte of a fast-start conn, on the relay and on each direct
path, is a frame: ``type (u8) | length (u32 BE) | body``. Stream frames (``DATA``,
``SWITCH``, ``EOF``) carry absolute offsets into one direction's byte stream, so a
receiver can drop what it already has and a sender can replay what was not
acknowledged; the other frames steer the migration.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from rdv_core.errors import RdvProtocolError

#: The magic and version that open a fast-start stream (the HELLO body).
MAGIC: Final = b"RDVF"
VERSION: Final = 1
#: Random bytes each peer adds to its HELLO; both together name the session on direct
#: paths (ATTACH), so a direct conn cannot be spliced into another session.
NONCE_SIZE: Final = 16
#: The largest DATA payload we send, and the largest body we accept.
MAX_PAYLOAD: Final = 256 * 1024
MAX_BODY: Final = MAX_PAYLOAD + 8

_HEAD = struct.Struct(">BI")
_U64 = struct.Struct(">Q")
_SWITCH = struct.Struct(">QB")
_HELLO = struct.Struct(">4sBc16s")
_ATTACH = struct.Struct(">B32s")
_PORT = struct.Struct(">BH")


class Kind(enum.IntEnum):
    """Frame types (docs/PROTOCOL.md section 16.3)."""

    HELLO = 0  # magic, version, role (b"D" / b"A"), nonce: first frame on the relay
    DATA = 1  # offset u64, payload
    ACK = 2  # u64: bytes of the peer's stream we hold
    SWITCH = 3  # offset u64, path u8: my stream continues on that path from offset
    RESUME = 4  # u64: send me your stream on this path from this offset
    EOF = 5  # offset u64: my stream ends here
    PING = 6  # u64 token, echoed in PONG: the relay RTT
    PONG = 7
    SYNC = 8  # attempt u8 (dialer to accepter): dial now
    ABORT = 9  # attempt u8 (dialer to accepter): that attempt is over
    ATTACH = 10  # attempt u8, session id (32 bytes): first frame on a direct path
    PORT = 11  # attempt u8, port u16: my fresh port for that attempt (0: none)


STREAM_KINDS: Final = frozenset({Kind.DATA, Kind.SWITCH, Kind.EOF})


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: ``value`` is the offset/count/token/attempt, ``data`` the rest."""

    kind: Kind
    value: int = 0
    data: bytes = b""
    path: int = 0  # SWITCH: the path the stream moves to; PORT: the port


def encode(kind: Kind, body: bytes = b"") -> bytes:
    """A frame's bytes."""
    return _HEAD.pack(kind, len(body)) + body


def data_frame(offset: int, payload: bytes | memoryview) -> bytes:
    """A DATA frame (one copy of the payload)."""
    return b"".join((_HEAD.pack(Kind.DATA, 8 + len(payload)), _U64.pack(offset), payload))


def u64_frame(kind: Kind, value: int) -> bytes:
    """ACK, RESUME, EOF, PING or PONG."""
    return encode(kind, _U64.pack(value))


def switch_frame(offset: int, path: int) -> bytes:
    """SWITCH: our stream continues on ``path`` from ``offset``."""
    return encode(Kind.SWITCH, _SWITCH.pack(offset, path))


def attempt_frame(kind: Kind, attempt: int) -> bytes:
    """SYNC or ABORT of one upgrade attempt."""
    return encode(kind, bytes([attempt]))


def hello_frame(role: bytes, nonce: bytes) -> bytes:
    """HELLO: confirms fast start end to end (docs/PROTOCOL.md section 16.2)."""
    return encode(Kind.HELLO, _HELLO.pack(MAGIC, VERSION, role, nonce))


def attach_frame(attempt: int, session_id: bytes) -> bytes:
    """ATTACH: the first frame on a direct path, naming the attempt and the session."""
    return encode(Kind.ATTACH, _ATTACH.pack(attempt, session_id))


def port_frame(attempt: int, port: int) -> bytes:
    """PORT: the fresh port our sockets use for one upgrade attempt (section 16.5)."""
    return encode(Kind.PORT, _PORT.pack(attempt, port))


def parse_hello(frame: Frame) -> tuple[bytes, bytes]:
    """``(role, nonce)`` of a HELLO.

    Raises:
        RdvProtocolError: when it is not a HELLO of our version.
    """
    if frame.kind != Kind.HELLO or len(frame.data) != _HELLO.size:
        raise RdvProtocolError("the peer did not confirm fast start (no HELLO)")
    magic, version, role, nonce = _HELLO.unpack(frame.data)
    if magic != MAGIC:
        raise RdvProtocolError("the peer did not confirm fast start (bad magic)")
    if version != VERSION:
        raise RdvProtocolError(f"fast-start version mismatch: peer {version}, us {VERSION}")
    return role, nonce


def parse_attach(frame: Frame) -> tuple[int, bytes]:
    """``(attempt, session_id)`` of an ATTACH.

    Raises:
        RdvProtocolError: when it is not an ATTACH.
    """
    if frame.kind != Kind.ATTACH or len(frame.data) != _ATTACH.size:
        raise RdvProtocolError("the direct path did not start with ATTACH")
    attempt, session_id = _ATTACH.unpack(frame.data)
    return attempt, session_id


_FIXED: Final = {
    Kind.ACK: 8,
    Kind.RESUME: 8,
    Kind.EOF: 8,
    Kind.PING: 8,
    Kind.PONG: 8,
    Kind.SWITCH: _SWITCH.size,
    Kind.SYNC: 1,
    Kind.ABORT: 1,
    Kind.HELLO: _HELLO.size,
    Kind.ATTACH: _ATTACH.size,
    Kind.PORT: _PORT.size,
}


class FrameParser:
    """Splits a byte stream into frames; bytes may arrive in any pieces."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Append ``data``; return every frame it completes.

        Raises:
            RdvProtocolError: on an unknown type or a bad length (the path is unusable).
        """
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        while len(buf) - pos >= _HEAD.size:
            raw_kind, length = _HEAD.unpack_from(buf, pos)
            try:
                kind = Kind(raw_kind)
            except ValueError:
                raise RdvProtocolError(f"unknown fast-start frame type {raw_kind}") from None
            want = _FIXED.get(kind)
            if (
                (want is not None and length != want)
                or length > MAX_BODY
                or (kind == Kind.DATA and length < 8)
            ):
                raise RdvProtocolError(f"bad length {length} for a fast-start {kind.name} frame")
            end = pos + _HEAD.size + length
            if len(buf) < end:
                break
            body = bytes(buf[pos + _HEAD.size : end])
            frames.append(_decode(kind, body))
            pos = end
        if pos:
            del buf[:pos]
        return frames


def _decode(kind: Kind, body: bytes) -> Frame:
    if kind == Kind.DATA:
        return Frame(kind, _U64.unpack_from(body)[0], body[8:])
    if kind == Kind.SWITCH:
        offset, path = _SWITCH.unpack(body)
        return Frame(kind, offset, path=path)
    if kind in (Kind.SYNC, Kind.ABORT):
        return Frame(kind, body[0])
    if kind == Kind.PORT:
        attempt, port = _PORT.unpack(body)
        return Frame(kind, attempt, path=port)
    if kind in (Kind.HELLO, Kind.ATTACH):
        return Frame(kind, data=body)
    return Frame(kind, _U64.unpack(body)[0])
