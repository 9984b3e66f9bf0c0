"""Events of an encrypted peer session: chat and file transfers."""

from __future__ import annotations

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
    """A transfer failed; a partial file is kept for resume when possible."""

    transfer_id: int
    direction: Literal["in", "out"]
    name: str
    reason: str


@event
class SessionClosed(Event):
    """The session ended (``reason`` is ``closed`` on a clean close)."""

    reason: str
