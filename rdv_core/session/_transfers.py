"""What the parts of a session share: where events go, a file's outcome and progress, disk errors.

:class:`EventSink` is the session's ``on_event`` callback, which the session and both
transfer directions report through. :class:`TransferResult` is what
:meth:`Session.send_paths` returns and :attr:`Session.received` collects;
:class:`Progress` throttles progress events and acks and builds the
:class:`~rdv_core.events.FileProgress` events.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rdv_core.events import BATCHED_EVENTS, Event, EventCallback, FileProgress

log = logging.getLogger("rdv.session")

#: Progress events and acks per transfer: at most one per this many seconds.
PROGRESS_INTERVAL = 0.1

Direction = Literal["in", "out"]


_BATCHED = frozenset(BATCHED_EVENTS)

#: How the reason of every file the end of a session cut short begins.
SESSION_ENDED = "session ended"


class EventSink:
    """Where a session's events go: its ``on_event`` callback, which cannot break the session.

    The transfers report many files at once (:class:`~rdv_core.events.FilesOffered`,
    ...); unless ``batched``, the callback gets the per-file events each stands for.
    """

    __slots__ = ("batched", "callback")

    def __init__(self, callback: EventCallback | None, *, batched: bool = False) -> None:
        self.callback = callback
        self.batched = batched

    def emit(self, event: Event) -> None:
        """Pass ``event`` to the callback; a failing callback is logged, not raised."""
        if self.callback is None:
            return
        if not self.batched and type(event) in _BATCHED:
            for each in event.each():  # type: ignore[attr-defined]
                self._call(each)
            return
        self._call(event)

    def _call(self, event: Event) -> None:
        assert self.callback is not None
        try:
            self.callback(event)
        except Exception:
            log.exception("session event callback failed on %s", event.type)


@dataclass(slots=True)
class TransferResult:
    """How one file ended (both directions).

    Attributes:
        where: Where the receiver stored the verified file, as text (receiver side
            only; "" else): no :class:`Path` per small file until one is asked for.
        resumed_from: Bytes that were already at the receiver when this run started.
    """

    transfer_id: int
    direction: Direction
    name: str
    size: int
    ok: bool
    digest: str = ""
    reason: str = ""
    where: str = ""
    resumed_from: int = 0

    @property
    def path(self) -> Path | None:
        """Where the receiver stored the verified file (receiver side only), else None."""
        return Path(self.where) if self.where else None


@dataclass(slots=True)
class Progress:
    """Throttled progress of one transfer."""

    total: int
    start_bytes: int
    started: float = field(default_factory=time.monotonic)
    last_emit: float = 0.0

    def due(self, done: int) -> bool:
        now = time.monotonic()
        if done >= self.total or now - self.last_emit >= PROGRESS_INTERVAL:
            self.last_emit = now
            return True
        return False

    def rate(self, done: int) -> float:
        elapsed = time.monotonic() - self.started
        return (done - self.start_bytes) / elapsed if elapsed > 0 else 0.0

    def event(
        self, at: float, id_: int, direction: Direction, done: int, *, force: bool = False
    ) -> FileProgress:
        """The event for ``done`` bytes at clock time ``at``.

        ``force`` marks an event sent regardless of :meth:`due` (a file's last one): it
        restarts the throttle as an event that was due would.
        """
        if force:
            self.last_emit = time.monotonic()
        return FileProgress(at, id_, direction, done, self.total, self.rate(done))


def describe_os_error(exc: BaseException, context: str) -> str:
    """``context: reason`` for a failed disk operation, naming common causes plainly."""
    if isinstance(exc, OSError) and exc.strerror:
        known = {
            errno.ENOSPC: "disk full",
            errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.EROFS: "read-only file system",
        }
        summary = known.get(exc.errno or 0)
        if exc.errno == errno.ENOSPC and _no_free_inodes(exc.filename):
            # The bytes are there (df shows them free), the room for files is not: a
            # disk of many small files meets this first, and "disk full" sent the user
            # to look for bytes.
            summary = "disk full: no free inodes for more files"
        if not summary:
            return f"{context}: {exc.strerror}"
        if summary.lower() == exc.strerror.lower():  # "read-only file system (Read-only ...)"
            return f"{context}: {summary}"
        return f"{context}: {summary} ({exc.strerror})"
    return f"{context}: {exc}"


def _no_free_inodes(filename: object) -> bool:
    """Whether the file system where ``filename`` was to be created has no free inodes
    (file systems without an inode count, such as btrfs, report none at all)."""
    if not isinstance(filename, str):
        return False
    try:
        info = os.statvfs(os.path.dirname(filename) or ".")
    except OSError:
        return False
    return info.f_files > 0 and info.f_favail == 0
