"""Files on disk for a session: what a sender offers, digests, free space.

Sender side, :func:`collect` turns the paths a user names (files and folders) into
:class:`LocalFile` entries with relative, ``/``-separated names, and :func:`read_whole`
reads a small one for a bundle. Receiver side, :func:`no_room_for` checks an offer
against the free space; each file being received is an
:class:`~rdv_core.session._incoming_file.IncomingFile`.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from rdv_core.session._errors import UnsafeName
from rdv_core.session._record import MAX_CONTROL_BODY
from rdv_core.session._safepath import (
    check_relative_path,
    open_nofollow,
    partial_path,
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

#: Encoded bytes of one offer frame at most (a huge folder is offered in several batches,
#: each one answered on its own), well under the control frame bound: some 250 small
#: files a batch, so that neither side spends long on one offer (its JSON, its events)
#: while the other waits, and the pipelined offers hide the round trips.
OFFER_BYTES = MAX_CONTROL_BODY // 4

#: The digest object of :data:`DIGEST` (``update``, ``hexdigest``).
Hasher = blake3


def new_hasher(data: bytes = b"") -> Hasher:
    """A fresh digest object of :data:`DIGEST` (fed with ``data``)."""
    return blake3(data)


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to send: where it is (as text), the name the receiver sees, size and mtime.

    The location is kept as text: a folder of 100,000 small files would otherwise build
    a :class:`~pathlib.Path` per file when it is listed, which cost more than its
    ``stat`` (bench/transfer.py --files); :attr:`path` makes one when asked.
    """

    where: str
    name: str
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        """Where the file is, as a :class:`~pathlib.Path`."""
        return Path(self.where)


#: Files found between two calls of :func:`collect`'s ``progress``.
PROGRESS_EVERY = 512


def collect(
    paths: Iterable[Path],
    skipped: Counter[str] | None = None,
    refused: list[tuple[str, str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[LocalFile]:
    """The files to send for ``paths``: files as themselves, folders recursively.

    A folder's files are named ``folder/sub/file``. Inside folders, symlinks are
    skipped (they could point anywhere, or loop); a path named explicitly is followed.
    Special files (fifos, sockets, devices) are skipped too, and folders arrive only
    with the files in them: ``skipped`` counts what was left out, by kind (``symlink``,
    ``special file``, ``empty folder``, ``unreadable folder``), for the user to be told.

    With ``refused``, a file whose name the receiver would refuse (``aux.c``, a
    trailing dot, a newline) is left out and listed there as ``(path, reason)``: one
    such name in a folder of thousands stopped the whole send before anything moved.

    ``progress`` is called with the number of files found so far, at each folder and
    every :data:`PROGRESS_EVERY` files (``~`` lists for minutes: the app shows the count);
    whatever it raises stops the listing and is raised here (the app's Stop).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a path is neither a file nor a folder, or two entries share a name.
        UnsafeName: without ``refused``, a name the receiver would refuse.
    """
    found: list[LocalFile] = []
    add = _Adder(found, refused, progress)
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_dir():
            _walk(str(path), path.resolve().name or "root", add, skipped)
        elif path.is_file():
            add(str(path), path.name, path.stat())
        else:
            raise ValueError(f"not a regular file or folder: {path}")
    seen: dict[str, LocalFile] = {}
    unique: list[LocalFile] = []
    for f in found:
        first = seen.get(f.name)
        if first is None:
            seen[f.name] = f
            unique.append(f)
        elif not os.path.samefile(first.where, f.where):
            raise ValueError(f"two files would arrive under the same name: {f.name}")
        # else: the same file named twice (``rdv send a.txt a.txt``, ``dir dir/``, an
        # overlapping glob): sent once. It was refused as two files of one name.
    return unique


def _walk(folder: str, name: str, add: _Adder, skipped: Counter[str] | None) -> None:
    """Add the regular files under ``folder`` (named ``name/...``): its own files first,
    then its sub-folders', each in name order; symlinks, unreadable folders and files
    deleted while it lists are skipped.

    One ``scandir`` per folder and one ``lstat`` per file (the entry's, cached by
    ``DirEntry``); paths stay text.
    """
    if add.progress is not None:
        add.progress(len(add.found))
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        if skipped is not None:
            skipped["unreadable folder"] += 1
        return
    if not entries and skipped is not None:
        skipped["empty folder"] += 1
    folders: list[os.DirEntry[str]] = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry)
        elif entry.is_file(follow_symlinks=False):
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                # Deleted since the folder was listed (a temporary file of a program at
                # work in it): it is not there to send. Raised, it ended the whole send
                # with "[Errno 2] No such file or directory" before anything was sent.
                continue
            add(entry.path, f"{name}/{entry.name}", info)
        elif skipped is not None:
            skipped["symlink" if entry.is_symlink() else "special file"] += 1
    for entry in folders:
        _walk(entry.path, f"{name}/{entry.name}", add, skipped)


class _Adder:
    """Adds a file to the list, or its name to ``refused`` (else raises) if unsafe."""

    __slots__ = ("found", "progress", "refused")

    def __init__(
        self,
        found: list[LocalFile],
        refused: list[tuple[str, str]] | None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.found = found
        self.refused = refused
        self.progress = progress

    def __call__(self, where: str, name: str, info: os.stat_result) -> None:
        try:
            check_relative_path(name)
        except UnsafeName as exc:
            if self.refused is None:
                raise UnsafeName(
                    f"{where}: the receiver would refuse the name {name!r}: {exc}"
                ) from None
            self.refused.append((where, str(exc)))
            return
        self.found.append(LocalFile(where, name, info.st_size, max(0, info.st_mtime_ns)))
        if self.progress is not None and not len(self.found) % PROGRESS_EVERY:
            self.progress(len(self.found))


def no_room_for(
    base: Path, offered: Iterable[tuple[str, int, int]], pending: int = 0
) -> str | None:
    """Why files of these ``(name, size, mtime_ns)`` cannot fit under ``base``, or None.

    Checked before the offer is shown to anyone (``--yes`` included): what cannot fit
    is refused, not accepted to fail later. Bytes already held in partial files of
    the same names count as present (a resume needs only the rest), and so do files
    already received whole (same name, size and mtime: checked, not sent again; a
    folder sent again after a break was refused for the room its received files
    already take); ``pending`` is what transfers still arriving will write.
    """
    files = list(offered)
    no_inodes = _no_inodes_for(base, files)
    if no_inodes is not None:
        return no_inodes
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return None  # cannot tell: writing will say so
    need = sum(size for _, size, _ in files) + pending
    if need <= free:
        return None
    for name, size, mtime_ns in files:
        target = base.joinpath(*name.split("/"))
        if _is_whole(target, size, mtime_ns):
            need -= size
            continue
        held = _regular_size(partial_path(target))
        need -= min(held or 0, size)
    if need <= free:
        return None
    return (
        f"not enough free space in the download folder: the offer needs {size_text(need)}, "
        f"{size_text(free)} free"
    )


def _no_inodes_for(base: Path, files: list[tuple[str, int, int]]) -> str | None:
    """Why the offer's new files cannot all be created under ``base`` (its file system
    has fewer free inodes than the offer has files not there yet), or None.

    The bytes fitted, so 20 files into room for 5 more were accepted and 15 failed one
    by one. Only files that surely need an inode of their own count (neither whole nor
    partial already); folders and sidecars are not counted: never a wrong refusal.
    """
    try:
        info = os.statvfs(base)
    except OSError:
        return None
    free = info.f_favail
    if info.f_files == 0 or len(files) <= free:  # no inode count (btrfs), or room
        return None
    new = 0
    for name, size, mtime_ns in files:
        target = base.joinpath(*name.split("/"))
        if not _is_whole(target, size, mtime_ns) and _regular_size(partial_path(target)) is None:
            new += 1
    if new <= free:
        return None
    return (
        f"not enough room for files in the download folder: the offer has {new} new "
        f"file{'' if new == 1 else 's'}, its file system has room for {free} more (free inodes)"
    )


def size_text(n: float) -> str:
    """``n`` bytes in binary units: ``1000 B``, ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def hash_prefix(
    path: Path, length: int, *, follow: bool = True, stop: threading.Event | None = None
) -> Hasher:
    """A digest object fed with the first ``length`` bytes of ``path``.

    Args:
        path: The file.
        length: How many bytes to hash.
        follow: False for the receiver's files: a symlink there is refused, not followed.
        stop: Set when the session ends: the hashing stops at the next block. It runs
            in a thread, which nothing else can stop: Ctrl-C during the check of an
            8 GiB file already there took 19 s to end the process (asyncio.run waits
            for its threads).

    Raises:
        OSError: the file cannot be read, is a symlink (``follow`` False), or is
            shorter than ``length``; or ``stop`` was set.
    """
    hasher = new_hasher()
    buffer = bytearray(_HASH_BLOCK)
    view = memoryview(buffer)
    left = length
    source = path if follow else open_nofollow(path)
    with open(source, "rb", buffering=0) as handle:
        while left:
            if stop is not None and stop.is_set():
                raise OSError(f"stopped hashing {path}: the session ended")
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
    fd = os.open(file.where, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if info.st_size != file.size or max(0, info.st_mtime_ns) != file.mtime_ns:
            raise OSError(f"{file.where} changed since it was offered")
        # One byte more than offered: a file that grew is not sent cut short. A read
        # that returns the offered size is the whole file (a regular file reads short
        # only at its end), so there is no second read to see the end (a syscall per
        # small file); a shorter one reads on.
        data = os.read(fd, file.size + 1)
        if 0 < len(data) < file.size:
            chunks = [data]
            left = file.size + 1 - len(data)
            while left > 0 and (chunk := os.read(fd, left)):
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) != file.size:
        raise OSError(f"{file.where} changed while sending")
    return data


def _is_whole(path: Path, size: int, mtime_ns: int) -> bool:
    """True if ``path`` is a regular file of this size and mtime (never a symlink)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == size and info.st_mtime_ns == mtime_ns


def _regular_size(path: Path) -> int | None:
    """The size of ``path`` if it is a regular file (never through a symlink), else None."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def offer_batches(files: Sequence[LocalFile]) -> list[list[LocalFile]]:
    """Split files into offers whose JSON stays under :data:`OFFER_BYTES`."""
    batches: list[list[LocalFile]] = [[]]
    used = 0
    for item in files:
        # JSON escapes can grow a name up to 6x (\uXXXX); ids, sizes, mtimes take < 64.
        cost = 6 * len(item.name.encode()) + 64
        if batches[-1] and used + cost > OFFER_BYTES:
            batches.append([])
            used = 0
        batches[-1].append(item)
        used += cost
    return [b for b in batches if b]
