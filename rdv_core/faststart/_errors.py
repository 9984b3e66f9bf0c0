"""Fast start's own error: a close the peer never confirmed (docs/PROTOCOL.md 16.4)."""

from __future__ import annotations

from rdv_core.errors import RdvError

__all__ = ["UnconfirmedDataError"]


class UnconfirmedDataError(RdvError, ConnectionResetError):
    """A fast-start conn was closed, but the peer never acknowledged our last bytes.

    The close waits for the peer's ``ACK`` of every byte we wrote (docs/PROTOCOL.md 16.4);
    the connection to the peer was lost first, so those bytes may never have arrived.
    ``await conn.aclose()`` and ``await conn.wait_closed()`` raise it; ``conn.close()``
    does not. A ``ConnectionResetError`` too.

    Attributes:
        unconfirmed: How many of the bytes we wrote the peer never confirmed.
    """

    def __init__(self, message: str, unconfirmed: int) -> None:
        super().__init__(message)
        self.unconfirmed = unconfirmed
