"""Files on disk for a session: what a sender offers, and how a receiver stores it.

Sender side, :func:`collect` turns the paths a user names (files and folders) into
:class:`LocalFile` entries with relative, ``/``-separated names. Receiver side,
:class:`IncomingFile` owns one file being received: it keeps data in a partial file
(``name.rdvpart`` beside the target, with a small ``.rdvpart.json`` sidecar naming the
offer it belongs to), hashes it as it is written, and on a verified digest moves it to
its final name without overwriting anything. A partial file survives failures: a new
session offering the same file (same name, size and mtime) resumes after the bytes
already held, which are hashed once from disk.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from rdv_core.session._errors import UnsafeName
from rdv_core.session._safepath import (
    Verified,
    check_relative_path,
    create_partial,
    open_nofollow,
    open_partial,
    partial_path,
    place_without_overwrite,
    prepare_target,
    read_state,
    sidecar_path,
    write_state,
)

#: Digest algorithm of whole files, named in every ``done`` frame. BLAKE3 costs about
#: half of SHA-256's CPU per GiB here (docs/LAB-NOTES.md section 10), and each side
#: hashes every byte.
DIGEST = "blake3"
_HASH_BLOCK = 1 << 20
#: Files smaller than this get no sidecar, so they are never resumed: a sidecar costs
#: more syscalls than sending such a file again (docs/PROTOCOL.md section 12.7).
SIDECAR_MIN = 64 * 1024

_DIFFERENT_FILE = (
    "a different file with the same name, size and time is already there "
    "(kept as it is; receive into another folder)"
)

#: The digest object of :data:`DIGEST` (``update``, ``hexdigest``).
Hasher = blake3


def new_hasher(data: bytes = b"") -> Hasher:
    """A fresh digest object of :data:`DIGEST` (fed with ``data``)."""
    return blake3(data)


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to send: where it is, the name the receiver sees, its size and mtime."""

    path: Path
    name: str
    size: int
    mtime_ns: int


def collect(paths: Iterable[Path]) -> list[LocalFile]:
    """The files to send for ``paths``: files as themselves, folders recursively.

    A folder's files are named ``folder/sub/file``. Inside folders, symlinks are
    skipped (they could point anywhere, or loop); a path named explicitly is followed.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a path is neither a file nor a folder, or two entries share a name.
        UnsafeName: a name the receiver would refuse (``CON``, ``a:b``, ...).
    """
    found: list[LocalFile] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_dir():
            _walk(path, path.resolve().name or "root", found)
        elif path.is_file():
            found.append(_local(path, path.name, path.stat()))
        else:
            raise ValueError(f"not a regular file or folder: {path}")
    names = [f.name for f in found]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"two files would arrive under the same name: {duplicate}")
    return found


def _walk(folder: Path, name: str, found: list[LocalFile]) -> None:
    """Add the regular files under ``folder`` (named ``name/...``): its own files first,
    then its sub-folders', each in name order; symlinks and unreadable folders skipped."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        return
    folders: list[os.DirEntry[str]] = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry)
        elif entry.is_file(follow_symlinks=False):
            info = entry.stat(follow_symlinks=False)
            found.append(_local(folder / entry.name, f"{name}/{entry.name}", info))
    for entry in folders:
        _walk(folder / entry.name, f"{name}/{entry.name}", found)


def _local(path: Path, name: str, info: os.stat_result) -> LocalFile:
    try:
        check_relative_path(name)
    except UnsafeName as exc:
        raise UnsafeName(f"{path}: the receiver would refuse the name {name!r}: {exc}") from None
    return LocalFile(path, name, info.st_size, max(0, info.st_mtime_ns))


def no_room_for(base: Path, offered: Iterable[tuple[str, int]], pending: int = 0) -> str | None:
    """Why files of these ``(name, size)`` cannot fit under ``base``, or None if they can.

    Checked before the offer is shown to anyone (``--yes`` included): what cannot fit
    is refused, not accepted to fail later. Bytes already held in partial files of
    the same names count as present (a resume needs only the rest); ``pending`` is
    what transfers still arriving will write.
    """
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return None  # cannot tell: writing will say so
    files = list(offered)
    need = sum(size for _, size in files) + pending
    if need <= free:
        return None
    for name, size in files:
        held = _regular_size(partial_path(base.joinpath(*name.split("/"))))
        need -= min(held or 0, size)
    if need <= free:
        return None
    return (
        f"not enough free space in the download folder: the offer needs {_size(need)}, "
        f"{_size(free)} free"
    )


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def hash_prefix(path: Path, length: int, *, follow: bool = True) -> Hasher:
    """A digest object fed with the first ``length`` bytes of ``path``.

    Args:
        path: The file.
        length: How many bytes to hash.
        follow: False for the receiver's files: a symlink there is refused, not followed.

    Raises:
        OSError: the file cannot be read, is a symlink (``follow`` False), or is
            shorter than ``length``.
    """
    hasher = new_hasher()
    buffer = bytearray(_HASH_BLOCK)
    view = memoryview(buffer)
    left = length
    source = path if follow else open_nofollow(path)
    with open(source, "rb", buffering=0) as handle:
        while left:
            n = handle.readinto(view[: min(left, _HASH_BLOCK)])
            if not n:
                raise OSError(f"{path} is shorter than the {length} bytes to resume from")
            hasher.update(view[:n])
            left -= n
    return hasher


def read_whole(file: LocalFile) -> bytes:
    """The whole of a small file to send, checked against what was offered.

    Raises:
        OSError: unreadable, or its size or mtime changed since it was offered.
    """
    fd = os.open(file.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if info.st_size != file.size or max(0, info.st_mtime_ns) != file.mtime_ns:
            raise OSError(f"{file.path} changed since it was offered")
        chunks: list[bytes] = []
        left = file.size + 1  # one more: a file that grew is not sent cut short
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)  # one chunk: that very object, not a copy
    if len(data) != file.size:
        raise OSError(f"{file.path} changed while sending")
    return data


def _regular_size(path: Path, *, refuse_link: bool = False) -> int | None:
    """The size of ``path`` if it is a regular file (never through a symlink), else None.

    Raises:
        UnsafeName: ``path`` is a symlink and ``refuse_link`` is set.
    """
    try:
        info = path.lstat()
    except OSError:
        return None
    if refuse_link and stat.S_ISLNK(info.st_mode):
        raise UnsafeName(f"{path.name}: a symlink is in the way (not followed)")
    return info.st_size if stat.S_ISREG(info.st_mode) else None


class IncomingFile:
    """One file being received into the download folder.

    Attributes:
        transfer_id: The sender's id for this file.
        name: The offered relative name (already checked safe).
        size: Offered size in bytes.
        mtime_ns: Offered modification time, applied to the final file.
        offset: Bytes already held when the transfer (re)started.
        received: Bytes held so far (from 0, including ``offset``).
        path: The final path once verified.
    """

    def __init__(self, base: Path, transfer_id: int, name: str, size: int, mtime_ns: int) -> None:
        self.transfer_id = transfer_id
        self.name = name
        self.size = size
        self.mtime_ns = mtime_ns
        self.parts = check_relative_path(name)
        self._base = base
        self.offset = 0
        self.path: Path | None = None
        self._fd: int | None = None
        self.received = 0
        self._hasher = new_hasher()
        self._target: Path | None = None
        self._existing = False
        #: The partial is opened at the first data (or at the end), not at accept time:
        #: a batch of many files holds no descriptor per file (docs/PROTOCOL.md 12.12).
        self._needs_open = False
        self._sidecar = False

    @staticmethod
    def check_name(name: str) -> tuple[str, ...]:
        """The components of a safe offered name (see :mod:`rdv_core.session._safepath`).

        Raises:
            UnsafeName: the name is refused.
        """
        return check_relative_path(name)

    @property
    def partial(self) -> Path:
        """The partial file's path (valid after :meth:`prepare`)."""
        assert self._target is not None
        return partial_path(self._target)

    def prepare(self, verified: Verified | None = None) -> int:
        """Make folders, find what is already held; return the offset.

        ``verified`` holds the folders checked by earlier files of the same batch
        (see :func:`~rdv_core.session._safepath.prepare_target`).

        The partial file itself is opened later, by the first :meth:`write` (or by
        :meth:`finish` for a file with nothing left to send).

        The offset is the length of a kept partial file of this offer (resume), or the
        whole size when the final name already holds a file of this size and mtime
        (an earlier verified run: it is checked against the sender's digest, not sent
        again), else 0.

        Blocking (hashes a kept prefix): run it in a thread.

        Raises:
            UnsafeName: a symlink or non-folder on the way.
            OSError: permission denied, disk full, ...
        """
        target = prepare_target(self._base, self.parts, verified)
        self._target = target
        partial = partial_path(target)
        wanted = {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}
        offset = 0
        # The partial is opened only when data comes (docs/PROTOCOL.md 12.12): refuse a
        # planted symlink now, at accept time, as an eager open would have. One lstat
        # tells that and what a kept partial holds.
        held = _regular_size(partial, refuse_link=True)
        sidecar = sidecar_path(target)
        # Known here, in the prepare thread, so that finishing a file on the loop does
        # not try to delete a sidecar that is not there (a syscall per small file).
        self._sidecar = os.path.lexists(sidecar)
        if self._sidecar and os.path.islink(sidecar):
            raise UnsafeName(f"{sidecar.name}: a symlink is in the way (not followed)")
        state = read_state(sidecar) if held is not None and self._sidecar else None
        if held is not None and state is not None:
            try:
                kept = json.loads(state)
            except ValueError:
                kept = None
            if kept == wanted and held <= self.size:
                offset = held
        if not offset and self._same_as_existing(target):
            # A verified earlier run left this very file (same size and mtime, which we
            # set on completion): check it against the sender's digest, send nothing.
            self._hasher = hash_prefix(target, self.size, follow=False)
            self._existing = True
            self.offset = self.received = self.size
            return self.size
        if offset:
            self._hasher = hash_prefix(partial, offset, follow=False)
        self._needs_open = True
        self.offset = self.received = offset
        return offset

    def _open(self) -> None:
        """Open the partial at the offset found by :meth:`prepare` (and name its offer).

        Raises:
            OSError: permission denied, too many open files, disk full, ...
        """
        self._needs_open = False
        assert self._target is not None
        partial = partial_path(self._target)
        if not self.offset and self.size >= SIDECAR_MIN:
            wanted = {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}
            write_state(sidecar_path(self._target), json.dumps(wanted))
            self._sidecar = True
        self._fd = open_partial(partial, self.offset) if self.offset else create_partial(partial)

    def _same_as_existing(self, target: Path) -> bool:
        try:
            info = target.lstat()
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeName(f"{'/'.join(self.parts)}: the target is a symlink")
        return (
            stat.S_ISREG(info.st_mode)
            and info.st_size == self.size
            and info.st_mtime_ns == self.mtime_ns
        )

    def write(self, data: memoryview) -> None:
        """Append authenticated data and hash it.

        Raises:
            OSError: disk full, file too large, I/O error (the partial file is kept).
            ValueError: more data than the offered size.
        """
        if self._needs_open:
            self._open()
        if self.received + len(data) > self.size or self._fd is None:
            raise ValueError(f"the sender sent more than the offered {self.size} bytes")
        view = data
        while view:
            written = os.write(self._fd, view)
            self.received += written
            view = view[written:]
        self._hasher.update(data)

    def finish(self, digest: str) -> tuple[bool, str, str]:
        """Check size and digest; on success move the file to its final name.

        For a file found complete at its final name (see :meth:`prepare`), only the
        digest is checked and nothing moves.

        Returns:
            ``(ok, our digest, reason)``; on a digest mismatch the partial is deleted
            (resuming from corrupt data would fail again). Our digest is given only
            when it equals the sender's: a receiver never tells what the file it holds
            hashes to (that would be a digest oracle for whoever holds the code).

        Raises:
            OSError: the partial of a file with nothing left to send cannot be created.
        """
        if self._needs_open:
            self._open()  # an empty file, or a kept partial that is already whole
        self.close()
        ours = self._hasher.hexdigest()
        if self._existing:
            assert self._target is not None
            if ours != digest:
                return False, "", _DIFFERENT_FILE
            self.path = self._target
            return True, ours, ""
        if self.received != self.size:
            return False, "", f"got {self.received} of {self.size} bytes"
        if ours != digest:
            self.discard()
            return False, "", "digest mismatch: the file differs from the sender's"
        assert self._target is not None
        os.utime(self.partial, ns=(self.mtime_ns, self.mtime_ns), follow_symlinks=False)
        self.path = place_without_overwrite(self.partial, self._target)
        if self._sidecar:
            sidecar_path(self._target).unlink(missing_ok=True)
        return True, ours, ""

    def store_whole(self, data: bytes | memoryview, digest: bytes) -> str:
        """Verify a whole file that came in one piece (a bundle), then store it.

        Nothing is written before the data match ``digest`` (raw BLAKE3): the file is
        written to its partial name, gets the offered mtime, and is moved to its final
        name without overwriting anything, as :meth:`finish` does. Returns our digest
        (hex), equal to the sender's.

        Raises:
            ValueError: the digest does not match (nothing was written).
            OSError: the file cannot be written or placed (its partial is removed:
                a file that came whole is sent again whole, docs/PROTOCOL.md 12.13).
        """
        self._needs_open = False
        assert self._target is not None
        if self._existing:  # an empty file already there (prepare found it whole)
            if self._hasher.digest() != digest:
                raise ValueError(_DIFFERENT_FILE)
            self.path = self._target
            return digest.hex()
        if blake3(data).digest() != digest:
            raise ValueError("digest mismatch: the file differs from the sender's")
        partial = partial_path(self._target)
        fd = create_partial(partial)
        try:
            view = data
            while view:
                view = view[os.write(fd, view) :]
            os.utime(fd, ns=(self.mtime_ns, self.mtime_ns))
        except OSError:
            os.close(fd)
            partial.unlink(missing_ok=True)
            raise
        os.close(fd)
        self.received = self.size
        self.path = place_without_overwrite(partial, self._target)
        return digest.hex()

    def close(self) -> None:
        """Close the partial file (kept on disk for a later resume)."""
        self._needs_open = False
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def discard(self) -> None:
        """Delete the partial file and its sidecar."""
        self.close()
        if self._target is not None:
            partial_path(self._target).unlink(missing_ok=True)
            sidecar_path(self._target).unlink(missing_ok=True)
