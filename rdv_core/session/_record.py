"""The record layer: how sealed frames are framed on the wire, and the bounds of a record.

On the wire every frame is one *record*::

    length (4 bytes, big-endian) | AEAD ciphertext of the plaintext | tag (16 bytes)

where ``length`` counts the ciphertext and tag. The plaintext is one frame (see
:mod:`~rdv_core.session._frames`), sealed by :mod:`~rdv_core.session._crypto`.

The constants live here, below the channel, the codec and the crypto, because all
three need them; the codec, the channel and the crypto import this module and not
one another, so there is no import cycle between them.
"""

from __future__ import annotations

import struct

from rdv_core.session._errors import FrameError

#: Bytes of the AES-GCM tag at the end of every record.
TAG_SIZE = 16
#: Largest file payload in one ``data`` frame.
MAX_DATA_PAYLOAD = 1 << 20
#: Largest JSON body of a control frame (an offer of many files is split into several).
MAX_CONTROL_BODY = 256 * 1024
#: Bytes of the data frame header inside the plaintext (type + transfer id).
DATA_HEADER = 5
#: Largest plaintext (type byte + data header + payload).
MAX_PLAINTEXT = 1 + 4 + MAX_DATA_PAYLOAD
#: Largest record (ciphertext + tag) that a reader accepts.
MAX_RECORD = MAX_PLAINTEXT + TAG_SIZE

#: The record header: the length of the ciphertext and tag that follow.
RECORD_HEADER = struct.Struct("!I")


def record_length(header: bytes | bytearray | memoryview) -> int:
    """The ciphertext length announced by a 4-byte record header.

    Raises:
        FrameError: the length is too small to hold a tag or larger than :data:`MAX_RECORD`.
    """
    if len(header) != RECORD_HEADER.size:
        raise FrameError("a record header is 4 bytes")
    (length,) = RECORD_HEADER.unpack(header)
    if length > MAX_RECORD:
        raise FrameError(f"oversized frame: {length} bytes (at most {MAX_RECORD})")
    if length < TAG_SIZE + 1:
        raise FrameError(f"undersized frame: {length} bytes")
    return int(length)


class RecordSplitter:
    """Sans-IO splitter of a byte stream into records (ciphertexts)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every complete record's ciphertext.

        Raises:
            FrameError: a record header announces an impossible length.
        """
        self._buffer += data
        records: list[bytes] = []
        while len(self._buffer) >= RECORD_HEADER.size:
            length = record_length(self._buffer[: RECORD_HEADER.size])
            end = RECORD_HEADER.size + length
            if len(self._buffer) < end:
                break
            records.append(bytes(self._buffer[RECORD_HEADER.size : end]))
            del self._buffer[:end]
        return records

    @property
    def pending(self) -> int:
        """Bytes held that do not form a complete record yet."""
        return len(self._buffer)
