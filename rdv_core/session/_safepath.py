"""Offered file names that can never escape the download folder, nor overwrite silently.

A sender names files by a relative, ``/``-separated path. The receiver refuses (it
does not "fix") any name that could leave the download folder or that is not
portable: absolute paths, ``..`` and ``.``, empty components, NUL, C0 and C1 control
characters and bidi overrides (a name that shows as ``invoice.pdf`` but is not),
backslashes and drive letters, Windows reserved device names (``CON``,
``NUL``, ``COM1``, ...), trailing dots or spaces, and our own partial-file suffix.
On disk, every existing component under the download folder must be a real
directory (never a symlink), and every file the receiver writes or reads back (partial
files and their ``.rdvpart.json`` sidecars included) is opened with ``O_NOFOLLOW``, so
a symlink planted at one of those names is refused, never followed. Names whose
partial or sidecar name would pass the file system's 255-byte limit get a shortened
partial name (see :func:`fit_name`) instead of failing.

"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from rdv_core.session._errors import UnsafeName
from rdv_core.wire import unsafe_char

#: Suffix of a partial (resumable) file, and of its metadata sidecar.
PARTIAL_SUFFIX = ".rdvpart"
SIDECAR_SUFFIX = ".rdvpart.json"

MAX_PATH_CHARS = 4096
MAX_COMPONENT_BYTES = 255
MAX_DEPTH = 64

_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"} | {
    f"{base}{n}" for base in ("COM", "LPT") for n in [*"0123456789", "¹", "²", "³"]
}
_FORBIDDEN_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"\\|?*]')


_DRIVE = re.compile(r"[A-Za-z]:")

# A plain name (the common case: a name per small file, 100,000 per send,
# bench/transfer.py --files) is accepted by a few checks of the whole name: printable
# ASCII without the forbidden characters, no empty component and none ending in a dot
# or a space (which covers "." and ".."), at most 255 characters in all (so per
# component), no reserved device name. Exactly a subset of what the component checks
# below accept; any other name goes through them, which also say why it is refused.
_PLAIN = re.compile(r'[^\x00-\x1f\x7f<>:"\\|?*\x80-\U0010ffff]+')


def check_relative_path(path: str) -> tuple[str, ...]:
    """The components of a safe offered path.

    Raises:
        UnsafeName: with the reason the name is refused.
    """
    if (
        len(path) <= MAX_COMPONENT_BYTES
        and _PLAIN.fullmatch(path)
        and not path.startswith("/")
        and not path.endswith(("/", ".", " ", PARTIAL_SUFFIX, SIDECAR_SUFFIX))
        and "//" not in path
        and "./" not in path
        and " /" not in path
        and path.count("/") < MAX_DEPTH
    ):
        parts = tuple(path.split("/"))
        for part in parts:
            if _is_reserved(part):
                break
        else:
            return parts
    if not path:
        raise UnsafeName("empty name")
    if len(path) > MAX_PATH_CHARS:
        raise UnsafeName(f"name longer than {MAX_PATH_CHARS} characters")
    if "\x00" in path:
        raise UnsafeName("NUL character in name")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafeName("absolute path")
    parts = tuple(path.split("/"))
    if len(parts) > MAX_DEPTH:
        raise UnsafeName(f"more than {MAX_DEPTH} nested folders")
    for part in parts:
        _check_component(part)
    if parts[-1].endswith((PARTIAL_SUFFIX, SIDECAR_SUFFIX)):
        raise UnsafeName(f"names ending in {PARTIAL_SUFFIX} are reserved for partial files")
    return parts


@functools.lru_cache(maxsize=4096)
def _is_reserved(part: str) -> bool:
    """Whether ``part`` names a Windows device (``CON``, ``com1.txt``, ``NUL .x``)."""
    return part.split(".", 1)[0].rstrip(" ").upper() in _RESERVED


@functools.lru_cache(maxsize=4096)
def _check_component(part: str) -> None:
    # Cached: the folders of a name repeat across the files of a folder (raising
    # calls are not cached, so a refused name is refused every time).
    if part in ("", ".", ".."):
        raise UnsafeName(f"path component {part!r} (empty, '.' or '..')")
    match = _FORBIDDEN_CHARS.search(part)
    if match:
        raise UnsafeName(f"forbidden character {match.group()!r} in {part!r}")
    hidden = unsafe_char(part)
    if hidden is not None:
        # C1 controls (U+009B is a CSI) and bidi overrides (U+202E shows "gpj.exe" as
        # "exe.jpg"): refused, never shown (docs/PROTOCOL.md section 12.8).
        raise UnsafeName(f"control or bidi character U+{ord(hidden):04X} in {part!a}")
    if part.endswith((".", " ")):
        raise UnsafeName(f"component {part!r} ends with a dot or a space")
    if _is_reserved(part):
        raise UnsafeName(f"reserved device name {part!r}")
    if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        raise UnsafeName(f"component longer than {MAX_COMPONENT_BYTES} bytes")
    try:
        part.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeName(f"component {part!r} is not valid Unicode text") from None


#: Folders :func:`prepare_target` already made and checked, by their components (the
#: key ``()`` holds the resolved download folder), as text: one batch of an offer
#: shares it.
Verified = dict[tuple[str, ...], str]


def prepare_target(base: Path, parts: tuple[str, ...], verified: Verified | None = None) -> Path:
    """The path for ``parts`` under ``base``, creating parent folders safely.

    Every existing component must be a real directory (not a symlink); missing ones
    are created. The result is checked to lie inside ``base``, and is not a symlink.

    Raises:
        UnsafeName: a component on disk is a symlink or not a directory.
        OSError: the folders cannot be created (permission, disk full, ...).
    """
    target = Path(target_in(base, parts, verified))
    if target.is_symlink():
        raise UnsafeName(f"{'/'.join(parts)}: the target is a symlink")
    return target


def target_in(base: Path, parts: tuple[str, ...], verified: Verified | None = None) -> str:
    """:func:`prepare_target` as text, without the check of the target itself.

    Folders found in ``verified`` were made and checked by an earlier call (of the
    same batch) and are not checked again: a batch of 250 files in one folder costs
    one check, not 250. A symlink planted there later is still never followed by the
    file itself (``O_NOFOLLOW`` on the last component, ``link`` never overwrites),
    and the folders are checked again for the next batch.
    """
    cache: Verified = {} if verified is None else verified
    folders = parts[:-1]
    parent = cache.get(folders)
    if parent is None:
        parent = cache[folders] = _prepare_folders(base, parts, cache)
    return f"{parent}/{parts[-1]}"


def _prepare_folders(base: Path, parts: tuple[str, ...], cache: Verified) -> str:
    root = cache.get(())
    if root is None:
        root = cache[()] = str(base.resolve())
    current = Path(root)
    for part in parts[:-1]:
        current = current / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(current, 0o755)
        if current.is_symlink() or not current.is_dir():
            raise UnsafeName(f"{'/'.join(parts)}: {current.name!r} is a symlink or not a folder")
    if os.path.commonpath([root, os.path.realpath(current)]) != root:
        raise UnsafeName(f"{'/'.join(parts)}: resolves outside the download folder")
    return str(current)


#: The names in each folder of a batch, listed once per batch (None: too many to list).
Listed = dict[str, frozenset[str] | None]
#: Entries of a folder listed at most: past that its files are looked up one by one.
LIST_MAX = 4096


def names_in(folder: str, listed: Listed) -> frozenset[str] | None:
    """The names in ``folder`` (listed once per batch), or None when it holds too many.

    A receiver asks, for each offered file, whether its final, partial and sidecar names
    exist (docs/PROTOCOL.md 12.7): three ``lstat``s per file, failing ones mostly, which
    cost more than listing a folder once for the batch (bench/transfer.py --files). The
    listing is as much a snapshot as those ``lstat``s were: what is planted later is
    still never followed (``O_NOFOLLOW``) nor overwritten (``link``).
    """
    if folder in listed:
        return listed[folder]
    names: set[str] = set()
    found: frozenset[str] | None = None
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                names.add(entry.name)
                if len(names) > LIST_MAX:
                    break
            else:
                found = frozenset(names)
    except OSError:
        pass
    listed[folder] = found
    return found


#: Bytes of the short digest :func:`fit_name` puts in a shortened name (``~`` + 8 hex).
_FIT_TAG = 9


def fit_name(name: str, suffix: str = "", limit: int = MAX_COMPONENT_BYTES) -> str:
    """``name + suffix``, with ``name`` shortened if the whole would pass ``limit`` bytes.

    A shortened name keeps its start (cut at a character boundary) and gets ``~`` and 8
    hex digits of the full name's SHA-256, so two long names that share a start still
    get distinct partial files.
    """
    if len((name + suffix).encode()) <= limit:
        return name + suffix
    room = limit - len(suffix.encode()) - _FIT_TAG
    start = name.encode()[:room].decode("utf-8", "ignore")
    tag = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{start}~{tag}{suffix}"


def partial_path(target: Path) -> Path:
    """Where the partial data of ``target`` is kept until verified.

    Shortened like its sidecar (:func:`fit_name`) when the sidecar's name would be too
    long, so the two always share a stem.
    """
    return Path(partial_of(str(target)))


def sidecar_path(target: Path) -> Path:
    """The metadata of a partial file (size and mtime it belongs to)."""
    return Path(sidecar_of(str(target)))


def partial_of(target: str) -> str:
    """:func:`partial_path` as text (no :class:`Path` per small file)."""
    folder, _, name = target.rpartition("/")
    stem = fit_name(name, SIDECAR_SUFFIX)[: -len(SIDECAR_SUFFIX)]
    return f"{folder}/{stem}{PARTIAL_SUFFIX}"


def sidecar_of(target: str) -> str:
    """:func:`sidecar_path` as text."""
    folder, _, name = target.rpartition("/")
    return f"{folder}/{fit_name(name, SIDECAR_SUFFIX)}"


def numbered(target: Path, n: int) -> Path:
    """``name (n).ext`` next to ``target`` (``archive (2).tar.gz`` keeps both suffixes).

    The stem is shortened (:func:`fit_name`) if the numbered name would be too long.
    """
    name = target.name
    stem, dot, ext = name.partition(".") if not name.startswith(".") else (name, "", "")
    tail = f" ({n}){dot}{ext}"
    if len(tail.encode()) > MAX_COMPONENT_BYTES // 2:
        stem, tail = name, f" ({n})"  # a huge extension: number the whole name instead
    return target.with_name(fit_name(stem, tail))


def place_without_overwrite(source: Path | str, target: Path | str) -> Path:
    """Move ``source`` to ``target``, or to ``name (1).ext``, ... if taken; return where.

    See :func:`place_as`.
    """
    return Path(place_as(str(source), str(target)))


def place_as(source: str, target: str, dir_fd: int | None = None) -> str:
    """:func:`place_without_overwrite` on text paths (no :class:`Path` per small file).

    A rename that refuses to replace (Linux ``renameat2`` with ``RENAME_NOREPLACE``: one
    syscall), else a hard link (fails if the name exists, so no race can overwrite)
    and an unlink of the source, else an existence check plus rename where links are
    not supported. With ``dir_fd`` (see :func:`open_folder`) both are names in that
    folder, and the name taken is returned.
    """
    at = {} if dir_fd is None else {"src_dir_fd": dir_fd, "dst_dir_fd": dir_fd}
    for n in range(10_000):
        candidate = target if n == 0 else str(numbered(Path(target), n))
        if _noreplace.works:
            try:
                _noreplace(source, candidate, dir_fd)
            except FileExistsError:
                continue
            except _NoReplaceUnsupported:
                pass  # this file system: link + unlink from now on
            else:
                return candidate
        try:
            os.link(source, candidate, **at, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.lstat(candidate, dir_fd=dir_fd)
                continue
            os.rename(source, candidate, **at)
            return candidate
        os.unlink(source, dir_fd=dir_fd)
        return candidate
    raise FileExistsError(f"no free name for {Path(target).name} after 10000 tries")


class _NoReplaceUnsupported(Exception):
    """``renameat2`` or its ``RENAME_NOREPLACE`` flag is not there (libc, kernel, fs)."""


class _NoReplace:
    """``renameat2(AT_FDCWD, source, AT_FDCWD, target, RENAME_NOREPLACE)`` through libc.

    One syscall where link + unlink take two (a small file's placing, 12.8); never
    replaces an existing target, and like ``link`` with ``follow_symlinks=False`` it
    moves a symlink itself, never what it points to. ``works`` turns False for good
    after the first "not supported" (old libc, kernel or a file system without it).
    """

    _AT_FDCWD = -100
    _RENAME_NOREPLACE = 1

    def __init__(self) -> None:
        self.works = False
        self._call: Any = None
        if sys.platform != "linux":
            return
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            call = libc.renameat2
        except (OSError, AttributeError):
            return
        text, number = ctypes.c_char_p, ctypes.c_int
        call.argtypes = [number, text, number, text, ctypes.c_uint]
        call.restype = ctypes.c_int
        self._call, self._errno, self.works = call, ctypes.get_errno, True

    def __call__(self, source: str, target: str, dir_fd: int | None = None) -> None:
        """Rename (in ``dir_fd``); raises FileExistsError, OSError, or _NoReplaceUnsupported."""
        fd = self._AT_FDCWD if dir_fd is None else dir_fd
        if self._call(fd, os.fsencode(source), fd, os.fsencode(target), self._RENAME_NOREPLACE):
            code = self._errno()
            if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
                self.works = False
                raise _NoReplaceUnsupported
            raise OSError(code, os.strerror(code), target)


_noreplace = _NoReplace()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def read_state(path: Path) -> str | None:
    """The text of a sidecar, or None if it is missing, a symlink or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    with open(fd, "rb") as handle:
        data = handle.read(64 * 1024)
    return data.decode("utf-8", "replace")


def write_state(path: Path | str, text: str, dir_fd: int | None = None) -> None:
    """Write a sidecar; a symlink planted at its name is refused, never followed.

    Raises:
        UnsafeName: ``path`` is a symlink (or otherwise not a regular file).
        OSError: permission denied, disk full, ...
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        _refuse_link(path, dir_fd, exc)
        raise
    with open(fd, "wb") as handle:
        handle.write(text.encode())


def open_nofollow(path: Path) -> int:
    """Open an existing file of the download folder for reading, never through a symlink.

    Raises:
        OSError: missing, a symlink (``ELOOP``), unreadable.
    """
    return os.open(path, os.O_RDONLY | _NOFOLLOW)


def open_partial(path: Path | str, offset: int, dir_fd: int | None = None) -> int:
    """Open (or create) a partial file for writing at ``offset``; return the descriptor.

    ``O_NOFOLLOW`` refuses a symlink planted at the partial's name.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        _refuse_link(path, dir_fd, exc)
        raise
    try:
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


def create_partial(path: Path | str, dir_fd: int | None = None) -> int:
    """Create (or empty) a partial file for writing from 0, in one ``open``.

    ``O_NOFOLLOW`` refuses a symlink planted at the partial's name.
    """
    try:
        return os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644, dir_fd=dir_fd
        )
    except OSError as exc:
        _refuse_link(path, dir_fd, exc)
        raise


def _refuse_link(path: Path | str, dir_fd: int | None, exc: OSError) -> None:
    """Raise :class:`UnsafeName` if ``open`` failed on a symlink at ``path``."""
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.lstat(path, dir_fd=dir_fd).st_mode):
            raise UnsafeName(f"{Path(path).name}: a symlink is in the way (not followed)") from exc


_FOLDER = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW


def open_folder(root: str, folders: tuple[str, ...]) -> int:
    """A descriptor of ``root/folders...``, reached without following any symlink in it.

    The folders were checked when the offer was accepted (:func:`target_in`), but a
    process of the same machine could have swapped one for a symlink since: files are
    created, timed and placed relative to this descriptor (``openat``, ``renameat2``),
    so the data never lands outside the download folder (docs/PROTOCOL.md 12.8).

    Raises:
        UnsafeName: a folder on the way is now a symlink or not a folder.
        OSError: a folder is gone (deleted while receiving), permission denied, ...
    """
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _gone(f"the download folder {root}") from None
    for part in folders:
        try:
            inner = os.open(part, _FOLDER, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeName(
                    f"{part!r} became a symlink or not a folder while receiving (not followed)"
                ) from exc
            if exc.errno == errno.ENOENT:
                raise _gone(f"the folder {part!r}") from None
            raise
        finally:
            os.close(fd)
        fd = inner
    return fd


def _gone(what: str) -> OSError:
    """The error for a folder deleted while its files were being received."""
    return FileNotFoundError(errno.ENOENT, f"{what} was deleted while receiving")


def check_not_gone(folder: int, exc: OSError) -> OSError:
    """``exc``, or the plain "deleted" error when ``folder`` (a descriptor) was removed."""
    with contextlib.suppress(OSError):
        if os.fstat(folder).st_nlink == 0:
            return _gone("its folder")
    return exc
