"""Bundles: many whole small files in one sealed record (docs/PROTOCOL.md section 12.13).

A folder of small files sent as ``data`` + ``done`` per file costs a record, two
frames, a JSON body and an answer (``ack``, ``result``) per file on both sides, which
is most of the time a small file takes. A ``bundle`` frame carries many whole files,
each with its BLAKE3 digest, and the receiver answers it with one ``bundled`` frame
that names only the files that failed. Sent only to a receiver whose ``hello``
announces :data:`FEATURE`.

This module is the codec (sans-IO) and the sender's packer: the plaintext is::

    type (u8, 14) | bundle number (u32) | count (u16) |
    count x [ transfer id (u32) | size (u32) | BLAKE3 digest (32 bytes) | size bytes ]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rdv_core.session._errors import FrameError
from rdv_core.session._record import MAX_PLAINTEXT

#: The ``hello`` feature of a receiver that takes ``bundle`` frames.
FEATURE = "bundle"
#: The type byte of a ``bundle`` frame.
BUNDLE_TYPE = 14
#: Files of at most this many bytes travel in bundles (bigger ones as data + done).
#: The size below which a receiver keeps no resume sidecar either
#: (docs/PROTOCOL.md 12.7): such files restart whole, so they lose nothing by never
#: being partial.
MAX_FILE = 64 * 1024
#: File bytes of one bundle at most: a chat line waits behind at most about this
#: much (docs/PROTOCOL.md 12.5), and the receiver verifies one bundle at a time.
BUNDLE_BYTES = 256 * 1024
#: Bytes of a raw BLAKE3 digest.
DIGEST_SIZE = 32

_HEAD = struct.Struct("!BIH")
_ENTRY = struct.Struct("!II32s")
_MAX_COUNT = (1 << 16) - 1


@dataclass(frozen=True, slots=True)
class BundledFile:
    """One whole file of a bundle: its transfer id, raw BLAKE3 digest and bytes."""

    id: int
    digest: bytes
    data: bytes | memoryview


@dataclass(frozen=True, slots=True)
class Bundle:
    """A ``bundle`` frame: whole files, in the order they were accepted."""

    number: int
    files: tuple[BundledFile, ...]


def encode(frame: Bundle) -> bytes:
    """The plaintext of a ``bundle`` frame.

    Raises:
        FrameError: too many files, a digest of the wrong size, or too large a body.
    """
    if len(frame.files) > _MAX_COUNT:
        raise FrameError("bundle holds too many files")
    parts: list[bytes | memoryview] = [_HEAD.pack(BUNDLE_TYPE, frame.number, len(frame.files))]
    for f in frame.files:
        if len(f.digest) != DIGEST_SIZE:
            raise FrameError("bundle digest must be 32 bytes")
        parts.append(_ENTRY.pack(f.id, len(f.data), f.digest))
        parts.append(f.data)
    plain = b"".join(parts)
    if len(plain) > MAX_PLAINTEXT:
        raise FrameError(f"bundle frame too large ({len(plain)} bytes)")
    return plain


def decode(view: memoryview) -> Bundle:
    """Decode a ``bundle`` plaintext (type byte included); data are views of ``view``.

    Raises:
        FrameError: a truncated or overlong body, or a count that does not match.
    """
    if len(view) < _HEAD.size:
        raise FrameError("bundle frame too short")
    _, number, count = _HEAD.unpack_from(view)
    at = _HEAD.size
    files: list[BundledFile] = []
    for _ in range(count):
        if len(view) - at < _ENTRY.size:
            raise FrameError("bundle frame truncated")
        id_, size, digest = _ENTRY.unpack_from(view, at)
        at += _ENTRY.size
        if len(view) - at < size:
            raise FrameError("bundle frame truncated")
        files.append(BundledFile(id_, digest, view[at : at + size]))
        at += size
    if at != len(view):
        raise FrameError("bundle frame has bytes after its files")
    return Bundle(number, tuple(files))


class Packer:
    """Collects whole small files into bundles no larger than :data:`BUNDLE_BYTES`."""

    __slots__ = ("_files", "_size", "next_number")

    def __init__(self) -> None:
        self.next_number = 1
        self._files: list[BundledFile] = []
        self._size = 0

    def fits(self, size: int) -> bool:
        """Whether a file of ``size`` bytes goes into the current bundle."""
        return not self._files or self._size + size <= BUNDLE_BYTES

    def add(self, id_: int, digest: bytes, data: bytes) -> None:
        """Add one whole file (call :meth:`take` first when it does not :meth:`fits`)."""
        self._files.append(BundledFile(id_, digest, data))
        self._size += len(data) + _ENTRY.size

    def take(self) -> Bundle | None:
        """The bundle collected so far (numbered), or None if it is empty."""
        if not self._files:
            return None
        bundle = Bundle(self.next_number, tuple(self._files))
        self.next_number += 1
        self._files, self._size = [], 0
        return bundle
