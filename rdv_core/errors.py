"""Errors of the rdv client, in a small hierarchy that also subclasses the builtins.

Callers can catch :class:`RdvError` for everything rdv raises, or the builtin they
already handle: every connection failure is a :class:`ConnectionError` (so also an
:class:`OSError`), and the overall timeout is a :class:`TimeoutError` (the aiohttp
``client_exceptions`` style).
"""

from __future__ import annotations

from typing import Final

#: How much of a server's error body we keep for the user (PROTOCOL.md section 4).
MAX_BODY: Final = 1024


class RdvError(Exception):
    """Base class of every error the rdv client raises."""


class ServerRejectedError(RdvError, ConnectionError):
    """The server answered with an error status instead of ``101 Switching Protocols``.

    Attributes:
        status: The HTTP status code (``409``, ``408``, ``503``, ...).
        reason: The reason phrase of the status line.
        body: Up to the first KiB of the body, decoded leniently (the server's message).
    """

    def __init__(self, status: int, reason: str, body: str) -> None:
        self.status = status
        self.reason = reason
        self.body = body[:MAX_BODY]
        detail = self.body.strip()
        text = f"server rejected: {status} {reason}".rstrip()
        super().__init__(f"{text}: {detail}" if detail else text)


class RdvProtocolError(RdvError, ConnectionError):
    """The server or the peer broke the rdv/1 protocol (bad response, bad line, ...)."""


class ServerConnectError(RdvError, ConnectionError):
    """The rdv server could not be reached (DNS, TCP or TLS failed).

    Attributes:
        errno: The OS error number when there was one.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class NoConnectionError(RdvError, ConnectionError):
    """The race ended without a usable connection (no direct conn, no relay).

    Attributes:
        causes: One short line per candidate that failed, for the user.
    """

    def __init__(self, message: str, causes: tuple[str, ...] = ()) -> None:
        self.causes = causes
        full = message if not causes else f"{message} ({'; '.join(causes)})"
        super().__init__(full)


class RdvTimeoutError(RdvError, TimeoutError):
    """The client's overall timeout expired.

    Attributes:
        stage: What the attempt was doing (``connecting to the server``,
            ``waiting for the peer``, ``racing``).
    """

    def __init__(self, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage
