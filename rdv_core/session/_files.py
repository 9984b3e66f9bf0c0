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
    check_relative_path,
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

#: The digest object of :data:`DIGEST` (``update``, ``hexdigest``).
Hasher = blake3


def new_hasher() -> Hasher:
    """A fresh digest object of :data:`DIGEST`."""
    return blake3()


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
            root_name = path.resolve().name or "root"
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not Path(dirpath, d).is_symlink())
                rel_dir = Path(dirpath).relative_to(path).as_posix()
                for filename in sorted(filenames):
                    full = Path(dirpath, filename)
                    info = full.lstat()
                    if not stat.S_ISREG(info.st_mode):
                        continue
                    name = root_name if rel_dir == "." else f"{root_name}/{rel_dir}"
                    found.append(_local(full, f"{name}/{filename}", info))
        elif path.is_file():
            found.append(_local(path, path.name, path.stat()))
        else:
            raise ValueError(f"not a regular file or folder: {path}")
    names = [f.name for f in found]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"two files would arrive under the same name: {duplicate}")
    return found


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


def _regular_size(path: Path) -> int | None:
    """The size of ``path`` if it is a regular file (never through a symlink), else None."""
    try:
        info = path.lstat()
    except OSError:
        return None
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

    def prepare(self) -> int:
        """Make folders, find what is already held, open the partial; return the offset.

        The offset is the length of a kept partial file of this offer (resume), or the
        whole size when the final name already holds a file of this size and mtime
        (an earlier verified run: it is checked against the sender's digest, not sent
        again), else 0.

        Blocking (hashes a kept prefix): run it in a thread.

        Raises:
            UnsafeName: a symlink or non-folder on the way.
            OSError: permission denied, disk full, ...
        """
        target = prepare_target(self._base, self.parts)
        self._target = target
        partial, sidecar = partial_path(target), sidecar_path(target)
        wanted = {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}
        offset = 0
        held = _regular_size(partial)
        state = read_state(sidecar) if held is not None else None
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
        else:
            write_state(sidecar, json.dumps(wanted))
        self._fd = open_partial(partial, offset)
        self.offset = self.received = offset
        return offset

    def _same_as_existing(self, target: Path) -> bool:
        try:
            info = target.lstat()
        except FileNotFoundError:
            return False
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
        """
        self.close()
        ours = self._hasher.hexdigest()
        if self._existing:
            assert self._target is not None
            if ours != digest:
                return (
                    False,
                    "",
                    (
                        "a different file with the same name, size and time is already there "
                        "(kept as it is; receive into another folder)"
                    ),
                )
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
        sidecar_path(self._target).unlink(missing_ok=True)
        return True, ours, ""

    def close(self) -> None:
        """Close the partial file (kept on disk for a later resume)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def discard(self) -> None:
        """Delete the partial file and its sidecar."""
        self.close()
        if self._target is not None:
            partial_path(self._target).unlink(missing_ok=True)
            sidecar_path(self._target).unlink(missing_ok=True)
