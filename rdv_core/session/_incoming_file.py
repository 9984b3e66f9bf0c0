"""One file being received into the download folder: partial file, digest, final name.

An :class:`IncomingFile` keeps data in a partial file (``name.rdvpart`` beside the
target, with a small ``.rdvpart.json`` sidecar naming the offer it belongs to, for
files of at least :data:`SIDECAR_MIN`), hashes it as it is written, and on a verified
digest moves it to its final name without overwriting anything. A partial file
survives failures: a new session offering the same file (same name, size and mtime)
resumes after the bytes already held, which are hashed once from disk. A small file
that came whole in a bundle (docs/PROTOCOL.md section 12.13) is verified before it
touches the disk (:meth:`IncomingFile.store_whole`).

Paths are kept as text: a folder of 100,000 small files would otherwise build several
:class:`~pathlib.Path` objects per file, which cost more than the file's syscalls.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from pathlib import Path

from blake3 import blake3

from rdv_core.session._errors import UnsafeName
from rdv_core.session._files import DIGEST, Hasher, hash_prefix, new_hasher, size_text
from rdv_core.session._safepath import (
    Listed,
    Verified,
    check_not_gone,
    check_relative_path,
    create_partial,
    names_in,
    numbered,
    open_folder,
    open_partial,
    partial_of,
    place_as,
    read_state,
    sidecar_of,
    target_in,
    write_state,
)

__all__ = ["DIGEST", "SIDECAR_MIN", "Folders", "IncomingFile"]

#: Descriptors of the folders a bundle's files went to, by folder path (see
#: :meth:`IncomingFile.store_whole`).
Folders = dict[str, int]

#: Files smaller than this get no sidecar, so they are never resumed: a sidecar costs
#: more syscalls than sending such a file again (docs/PROTOCOL.md section 12.7).
SIDECAR_MIN = 64 * 1024

_DIFFERENT_FILE = (
    "a different file with the same name, size and time is already there "
    "(kept as it is; receive into another folder)"
)


_BAD_PREFIX = (
    "digest mismatch: the partial file kept from an earlier run (resumed after {}) did not "
    "match the sender's file; it was deleted: run both commands again to receive it whole"
)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


class IncomingFile:
    """One file being received into the download folder.

    Attributes:
        transfer_id: The sender's id for this file.
        name: The offered relative name (already checked safe).
        size: Offered size in bytes.
        mtime_ns: Offered modification time, applied to the final file.
        offset: Bytes already held when the transfer (re)started.
        received: Bytes held so far (from 0, including ``offset``).
        path: The final path once verified (:attr:`placed` as a :class:`Path`).
        placed: The final path once verified, as text ("" before).
    """

    def __init__(
        self,
        base: Path,
        transfer_id: int,
        name: str,
        size: int,
        mtime_ns: int,
        parts: tuple[str, ...] | None = None,
    ) -> None:
        self.transfer_id = transfer_id
        self.name = name
        self.size = size
        self.mtime_ns = mtime_ns
        #: ``parts`` when the caller already checked the name (the offer's check).
        self.parts = parts if parts is not None else check_relative_path(name)
        self._base = base
        self.offset = 0
        self.placed = ""
        self._fd: int | None = None
        #: The target's folder while the partial is open (files are made, timed and
        #: placed relative to it: :func:`~rdv_core.session._safepath.open_folder`).
        self._dir: int | None = None
        self.received = 0
        self._hasher: Hasher | None = None
        self._target = ""
        self._existing = False
        #: Where the file found whole is (``_existing``): the name or a numbered one.
        self._existing_at = ""
        #: The partial is opened at the first data (or at the end), not at accept time:
        #: a batch of many files holds no descriptor per file (docs/PROTOCOL.md 12.12).
        self._needs_open = False
        self._sidecar = False

    @property
    def path(self) -> Path | None:
        """The final path once verified, else None."""
        return Path(self.placed) if self.placed else None

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
        assert self._target
        return Path(partial_of(self._target))

    @property
    def hasher(self) -> Hasher:
        """The digest of the bytes held so far (made when first needed)."""
        if self._hasher is None:
            self._hasher = new_hasher()
        return self._hasher

    def prepare(
        self,
        verified: Verified | None = None,
        listed: Listed | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Make folders, find what is already held; return the offset.

        ``verified`` holds the folders checked by earlier files of the same batch
        (see :func:`~rdv_core.session._safepath.target_in`), ``listed`` the names in
        them (:func:`~rdv_core.session._safepath.names_in`): a file none of whose
        names is there starts at 0 without a look-up of its own. ``stop`` (set when the
        session ends) stops the hashing of what is held (:func:`hash_prefix`).

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
        target = self._target = target_in(self._base, self.parts, verified)
        partial, sidecar = partial_of(target), sidecar_of(target)
        if listed is not None:
            folder, _, name = target.rpartition("/")
            names = names_in(folder, listed)
            if names is not None and not (
                name in names
                or partial.rpartition("/")[2] in names
                or sidecar.rpartition("/")[2] in names
            ):
                self._sidecar = False
                self._needs_open = True
                self.offset = self.received = 0
                return 0
        # The partial is opened only when data comes (docs/PROTOCOL.md 12.12): refuse a
        # planted symlink now, at accept time, as an eager open would have.
        held = self._held(partial)
        # Known here, in the prepare thread, so that finishing a file on the loop does
        # not try to delete a sidecar that is not there (a syscall per small file).
        self._sidecar = os.path.lexists(sidecar)
        if self._sidecar and os.path.islink(sidecar):
            raise UnsafeName(f"{Path(sidecar).name}: a symlink is in the way (not followed)")
        offset = 0
        if held is not None and self._sidecar:
            state = read_state(Path(sidecar))
            try:
                kept = json.loads(state) if state is not None else None
            except ValueError:
                kept = None
            wanted = {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}
            if kept == wanted and held <= self.size:
                offset = held
        same = self._same_as_existing(target) if not offset else None
        if same is not None:
            # A verified earlier run left this very file (same size and mtime, which we
            # set on completion): check it against the sender's digest, send nothing.
            self._hasher = hash_prefix(Path(same), self.size, follow=False, stop=stop)
            self._existing = True
            self._existing_at = same
            self.offset = self.received = self.size
            return self.size
        if offset:
            self._hasher = hash_prefix(Path(partial), offset, follow=False, stop=stop)
        self._needs_open = True
        self.offset = self.received = offset
        return offset

    @staticmethod
    def _held(partial: str) -> int | None:
        """The length of a kept partial file, or None (a symlink there is refused)."""
        info = _lstat(partial)
        if info is None:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeName(f"{Path(partial).name}: a symlink is in the way (not followed)")
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def _same_as_existing(self, target: str) -> str | None:
        """Where a file of this size and mtime already is: ``target`` or, when another
        file holds that name, one of its numbered names (``name (1).ext``, ...).

        The numbered names count: an earlier run that met a different ``report.pdf``
        saved this one as ``report (1).pdf``, and without them each run again saved
        another copy (``report (2).pdf``, ...) of a file already received.
        """
        info = _lstat(target)
        if info is None:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeName(f"{'/'.join(self.parts)}: the target is a symlink")
        candidate = target
        for n in range(1, 10_001):  # place_as's names, up to the first free one
            if self._same(info):
                return candidate
            candidate = str(numbered(Path(target), n))
            info = _lstat(candidate)
            if info is None:
                return None
        return None

    def _same(self, info: os.stat_result) -> bool:
        return (
            stat.S_ISREG(info.st_mode)
            and info.st_size == self.size
            and info.st_mtime_ns == self.mtime_ns
        )

    def _open(self) -> None:
        """Open the partial at the offset found by :meth:`prepare` (and name its offer).

        Raises:
            UnsafeName: a folder on the way became a symlink since :meth:`prepare`.
            OSError: permission denied, too many open files, disk full, ...
        """
        self._needs_open = False
        folder = self._dir = self._open_folder()
        _, partial, sidecar = self._names()
        try:
            if not self.offset and self.size >= SIDECAR_MIN:
                wanted = {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}
                write_state(sidecar, json.dumps(wanted), folder)
                self._sidecar = True
            if self.offset:
                self._fd = open_partial(partial, self.offset, folder)
            else:
                self._fd = create_partial(partial, folder)
        except OSError as exc:
            raise self._located(exc) from None

    def _located(self, exc: OSError) -> OSError:
        """``exc`` naming the whole path (the disk-full check looks at its file system)."""
        if isinstance(exc.filename, str) and "/" not in exc.filename:
            exc.filename = self._placed(exc.filename)
        return exc

    def _open_folder(self) -> int:
        """The target's folder, reached from the download folder without a symlink."""
        assert self._target
        root = self._target[: len(self._target) - len("/".join(self.parts)) - 1]
        return open_folder(root, self.parts[:-1])

    def _names(self) -> tuple[str, str, str]:
        """The target's, its partial's and its sidecar's names in their folder."""
        return tuple(  # type: ignore[return-value]
            path.rpartition("/")[2]
            for path in (self._target, partial_of(self._target), sidecar_of(self._target))
        )

    def _placed(self, name: str) -> str:
        return f"{self._target.rpartition('/')[0]}/{name}"

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
        self.hasher.update(data)

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
        if self._existing:
            self.close()
            if self.hasher.hexdigest() != digest:
                return False, "", _DIFFERENT_FILE
            self.placed = self._existing_at
            return True, self.hasher.hexdigest(), ""
        try:
            if self._needs_open:
                self._open()  # an empty file, or a kept partial that is already whole
            return self._verify_and_place(digest)
        finally:
            self.close()

    def _verify_and_place(self, digest: str) -> tuple[bool, str, str]:
        ours = self.hasher.hexdigest()
        if self.received != self.size:
            return False, "", f"got {self.received} of {self.size} bytes"
        if ours != digest:
            self.discard()
            if self.offset:
                # The kept prefix, not the sender's file, is the likely culprit (the file
                # was rewritten keeping its size and mtime, or the partial was altered):
                # it is deleted, so the next run sends the file whole (12.7, 12.9).
                return False, "", _BAD_PREFIX.format(size_text(self.offset))
            return False, "", "digest mismatch: the file differs from the sender's"
        assert self._fd is not None and self._dir is not None
        os.utime(self._fd, ns=(self.mtime_ns, self.mtime_ns))
        name, partial, sidecar = self._names()
        try:
            self.placed = self._placed(place_as(partial, name, self._dir))
        except FileNotFoundError as exc:
            raise check_not_gone(self._dir, exc) from None
        if self._sidecar:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar, dir_fd=self._dir)
        return True, ours, ""

    def store_whole(
        self, data: bytes | memoryview, digest: bytes, folders: Folders | None = None
    ) -> str:
        """Verify a whole file that came in one piece (a bundle), then store it.

        Nothing is written before the data match ``digest`` (raw BLAKE3): the file is
        written to its partial name, gets the offered mtime, and is moved to its final
        name without overwriting anything, as :meth:`finish` does. Returns our digest
        (hex), equal to the sender's.

        ``folders`` keeps the folders' descriptors for the files of one bundle (one
        walk per folder, not per file); its owner closes them.

        Raises:
            ValueError: the digest does not match (nothing was written).
            OSError: the file cannot be written or placed (its partial is removed:
                a file that came whole is sent again whole, docs/PROTOCOL.md 12.13).
        """
        self._needs_open = False
        assert self._target
        if self._existing:  # an empty file already there (prepare found it whole)
            if self.hasher.digest() != digest:
                raise ValueError(_DIFFERENT_FILE)
            self.placed = self._existing_at
            return digest.hex()
        if blake3(data).digest() != digest:
            raise ValueError("digest mismatch: the file differs from the sender's")
        name, partial, _ = self._names()
        key = self._target.rpartition("/")[0]
        folder = folders.get(key) if folders is not None else None
        if folder is None:
            folder = self._open_folder()
            if folders is not None:
                folders[key] = folder
        try:
            try:
                fd = create_partial(partial, folder)
            except OSError as exc:
                raise self._located(exc) from None
            try:
                view = data
                while view:
                    view = view[os.write(fd, view) :]
                os.utime(fd, ns=(self.mtime_ns, self.mtime_ns))
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(partial, dir_fd=folder)
                raise self._located(exc) from None
            finally:
                os.close(fd)
            self.received = self.size
            self.placed = self._placed(place_as(partial, name, folder))
            if self._sidecar:  # left by an earlier run that sent it in data frames
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._names()[2], dir_fd=folder)
        finally:
            if folders is None:
                os.close(folder)
        return digest.hex()

    def close(self) -> None:
        """Close the partial file (kept on disk for a later resume)."""
        self._needs_open = False
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        if self._dir is not None:
            fd, self._dir = self._dir, None
            os.close(fd)

    def discard(self) -> None:
        """Delete the partial file and its sidecar (in the folder the partial is in)."""
        if not self._target:
            return
        try:
            folder = self._dir if self._dir is not None else self._open_folder()
        except (OSError, UnsafeName):
            self.close()
            return  # the folder is gone, or a symlink now: nothing of ours to delete
        try:
            for leftover in self._names()[1:]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover, dir_fd=folder)
        finally:
            if folder != self._dir:
                os.close(folder)
            self.close()
