"""What both transfer directions share: a file's outcome, its progress, disk errors.

:class:`TransferResult` is what :meth:`Session.send_paths` returns and
:attr:`Session.received` collects; :class:`Progress` throttles progress events and acks.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: Progress events and acks per transfer: at most one per this many seconds.
PROGRESS_INTERVAL = 0.1

Direction = Literal["in", "out"]


@dataclass(slots=True)
class TransferResult:
    """How one file ended (both directions).

    Attributes:
        path: Where the receiver stored the verified file (receiver side only).
        resumed_from: Bytes that were already at the receiver when this run started.
    """

    transfer_id: int
    direction: Direction
    name: str
    size: int
    ok: bool
    digest: str = ""
    reason: str = ""
    path: Path | None = None
    resumed_from: int = 0


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
        return f"{context}: {summary} ({exc.strerror})" if summary else f"{context}: {exc.strerror}"
    return f"{context}: {exc}"
