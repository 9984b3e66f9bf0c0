"""The one error tree of rdv: :class:`RdvError` is the root of everything rdv raises.

Callers can catch :class:`RdvError` for everything, or the builtin they already handle:
every error also subclasses the builtin it means (the aiohttp ``client_exceptions``
style), so a connection failure is a :class:`ConnectionError` (also an :class:`OSError`),
the overall timeout a :class:`TimeoutError`, bad input a :class:`ValueError`.

This module is the root and the client's errors; each layer defines its own branch beside
its code, all importable from :mod:`rdv_core`::

    RdvError
    ├── ServerRejectedError, RdvProtocolError, ServerConnectError,
    │   NoConnectionError (ConnectionError)                     client: the attempt
    ├── RdvTimeoutError (TimeoutError)                          client: --timeout expired
    ├── ProtocolError ── RequestRejected, Misdial               wire: input breaks rdv/1
    ├── AddrError (ValueError)                                  wire: an address or space
    ├── Reject                                                  server: a hook says no
    ├── SessionError ── CodeMismatch, ConnectionLost, ...       session
    ├── CodeError, UnsafeName (ValueError)                      session: a code, a name
    ├── ConfigError (ValueError)                                config: the settings file
    └── LabError (RuntimeError), LabSpecError (ValueError)      lab
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "MAX_BODY",
    "NoConnectionError",
    "RdvError",
    "RdvProtocolError",
    "RdvTimeoutError",
    "ServerConnectError",
    "ServerRejectedError",
]

#: How much of a server's error body we keep for the user (docs/PROTOCOL.md section 4).
MAX_BODY: Final = 1024


class RdvError(Exception):
    """The root of every error rdv raises."""


class ServerRejectedError(RdvError, ConnectionError):
    """The server answered with an error status instead of ``101 Switching Protocols``.

    Attributes:
        status: The HTTP status code (``409``, ``408``, ``503``, ...).
        reason: The reason phrase of the status line.
        body: Up to the first KiB of the body, decoded leniently (the server's message).
        hint: What the client concluded from the answer, e.g. that a proxy on the way
            answered instead of the server (docs/PROTOCOL.md section 17.1), or None.
    """

    def __init__(self, status: int, reason: str, body: str, hint: str | None = None) -> None:
        self.status = status
        self.reason = reason
        self.body = body[:MAX_BODY]
        self.hint = hint
        detail = self.body.strip()
        text = f"server rejected: {status} {reason}".rstrip()
        text = f"{text}: {detail}" if detail else text
        super().__init__(f"{text}; {hint}" if hint else text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles (and copies) by calling the class with ``args``, the message
        # alone: a worker process's rejection broke its pool with a TypeError instead.
        return type(self), (self.status, self.reason, self.body, self.hint), self.__dict__


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

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError rebuilds ``errno`` from ``args`` (the message alone): keep ours.
        return type(self), (str(self), self.errno), self.__dict__


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
            ``waiting for the peer``, ``racing for a connection``).
    """

    def __init__(self, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage
