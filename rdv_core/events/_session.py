"""Events of an encrypted peer session: chat and file transfers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from rdv_core.events._base import Event, event


@event
class SessionEstablished(Event):
    """The encrypted session is up: keys confirmed on both sides."""

    is_relay: bool
    peer_addr: str
    version: int


@event
class ChatSent(Event):
    """We sent a chat message."""

    text: str


@event
class ChatReceived(Event):
    """The peer sent a chat message."""

    text: str


@event
class FileOffered(Event):
    """A file was offered (``direction`` is ``in`` or ``out``)."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    size: int


@event
class FileAccepted(Event):
    """The receiver accepted a file; ``offset`` is where the data starts (resume)."""

    transfer_id: int
    direction: Literal["in", "out"]
    offset: int


@event
class FileRejected(Event):
    """The receiver declined a file."""

    transfer_id: int
    direction: Literal["in", "out"]
    reason: str


@event
class FileProgress(Event):
    """Progress of one transfer. Cheap and mergeable: a newer one replaces an older one."""

    transfer_id: int
    direction: Literal["in", "out"]
    done: int
    total: int
    rate: float

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, or None when the rate is unknown."""
        if self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


@event
class TransferResumed(Event):
    """A transfer continues from ``offset`` after a broken connection."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    offset: int


@event
class FileCompleted(Event):
    """A transfer finished and the receiver verified the whole-file digest."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    size: int
    digest: str
    path: str = ""


@event
class FileFailed(Event):
    """A transfer failed; a partial file is kept for resume when possible.

    ``cancelled``: a user stopped it (this side's, or the peer's: the reason says which),
    nothing went wrong; a summary counts it apart from failures (docs/PROTOCOL.md 12.14).
    """

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    reason: str
    cancelled: bool = False


# ----- many files in one event (docs/ARCHITECTURE.md section 2, "Batched file events")
#
# A send of 100,000 small files brought 300,000 per-file events to each side, and each
# cost more than the file's own work (bench/transfer.py --files). A session created with
# ``batched_events=True`` emits these instead: one per offer (batch) or per bundle
# (docs/PROTOCOL.md 12.13). Any other session expands each into the per-file events it
# stands for (:meth:`each`), in order, so callbacks that know only those see no change.


@event
class FilesOffered(Event):
    """The files of one offer (``batch``): a :class:`FileOffered` for each."""

    batch: int
    direction: Literal["in", "out"]
    ids: tuple[int, ...]
    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def each(self) -> Iterator[FileOffered]:
        """The per-file events this one stands for."""
        for id_, name, size in zip(self.ids, self.names, self.sizes, strict=True):
            yield FileOffered(self.t, id_, self.direction, name, size)


@event
class FilesAccepted(Event):
    """The receiver accepted these files of one offer: a :class:`FileAccepted` for each."""

    batch: int
    direction: Literal["in", "out"]
    ids: tuple[int, ...]
    offsets: tuple[int, ...]

    def each(self) -> Iterator[FileAccepted]:
        """The per-file events this one stands for."""
        for id_, offset in zip(self.ids, self.offsets, strict=True):
            yield FileAccepted(self.t, id_, self.direction, offset)


@event
class FilesCompleted(Event):
    """Files verified by the receiver (a bundle's): a :class:`FileCompleted` for each."""

    direction: Literal["in", "out"]
    ids: tuple[int, ...]
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    digests: tuple[str, ...]
    #: Where the receiver stored each file (receiver side), else empty strings.
    paths: tuple[str, ...]

    def each(self) -> Iterator[FileCompleted]:
        """The per-file events this one stands for."""
        for id_, name, size, digest, path in zip(
            self.ids, self.names, self.sizes, self.digests, self.paths, strict=True
        ):
            yield FileCompleted(self.t, id_, self.direction, name, size, digest, path)


#: The batched events (each has ``each()``, the per-file events it stands for).
BATCHED_EVENTS: tuple[type[Event], ...] = (FilesOffered, FilesAccepted, FilesCompleted)


@event
class SessionClosed(Event):
    """The session ended (``reason`` is ``closed`` on a clean close)."""

    reason: str
